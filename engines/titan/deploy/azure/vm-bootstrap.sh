#!/usr/bin/env bash
# Runs on the VM (az vm run-command, as azureuser) with REPO, PHASE, BLOB, MIXTURE, OUTPUT, PRICE [, WANDB_API_KEY] set:
# clone, the README's install, the mixture from the storage container, then `titan run` under tmux with a
# checkpoint sync to the container every 10 minutes. Rerunnable: each step skips what is already there.
set -euo pipefail
: "${REPO:?}" "${PHASE:?}" "${BLOB:?}" "${MIXTURE:?}" "${OUTPUT:?}" "${PRICE:?}"
cd "$HOME"
[ -d datakit/.git ] || git clone "$REPO" datakit
cd datakit
command -v azcopy >/dev/null || { curl -sSL https://aka.ms/downloadazcopy-v10-linux | tar -xz --strip-components=1 -C /tmp && sudo mv /tmp/azcopy /usr/local/bin/; }
command -v tmux >/dev/null || { sudo apt-get update -q && sudo apt-get install -y -q tmux make python3-venv; }
make install
export AZCOPY_AUTO_LOGIN_TYPE=MSI   # the VM's managed identity (Storage Blob Data Contributor on the account)
mkdir -p "$MIXTURE" "$OUTPUT"
azcopy sync "$BLOB/$MIXTURE" "$MIXTURE" --recursive
azcopy sync "$BLOB/$OUTPUT" "$OUTPUT" --recursive || true   # resume from checkpoints saved before
mode=offline
if [ -n "${WANDB_API_KEY:-}" ]; then mode=online; printf 'WANDB_API_KEY=%s\n' "$WANDB_API_KEY" > "$HOME/.datakit-wandb.env"; chmod 600 "$HOME/.datakit-wandb.env"; fi
tmux has-session -t datakit 2>/dev/null && exit 0
tmux new-session -d -s datakit "set -a; [ -f ~/.datakit-wandb.env ] && . ~/.datakit-wandb.env; set +a; source .venv/bin/activate; \
  titan refscore $PHASE 2>/dev/null; titan run $PHASE --wandb $mode --price-per-hour $PRICE 2>&1 | tee -a train.log"
tmux new-window -d -t datakit -n sync "while sleep 600; do AZCOPY_AUTO_LOGIN_TYPE=MSI azcopy sync $OUTPUT $BLOB/$OUTPUT --recursive; done"
