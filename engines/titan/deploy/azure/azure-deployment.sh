#!/usr/bin/env bash
# The plan's way onto Azure, without SkyPilot: one Standard_NC24ads_A100_v4 (A100 80GB) VM from NVIDIA's NGC
# image, a storage account + container for the mixture and the checkpoints, the README's install, and
# training under tmux with wandb. Idempotent: every resource is looked up before it is created, so a rerun
# after a failure carries on. `--dry-run` prints every az command instead of running it.
#
#   engines/titan/deploy/azure/azure-deployment.sh --dry-run
#   engines/titan/deploy/azure/azure-deployment.sh --phase engines/titan/phases/longctx_sft_dpo.toml --repo https://github.com/<you>/datakit
#   engines/titan/deploy/azure/teardown.sh            # stop paying for the VM (storage stays), --all: everything
#
# Needs: az (logged in: az login; az account set -s <subscription>), a GPU quota for NCADS_A100_v4 in the
# region, and the NGC image's marketplace terms (accepted below). docs/cloud.md walks through it.
set -euo pipefail

RG=datakit-rg
LOCATION=eastus
VM=datakit-a100
SIZE=Standard_NC24ads_A100_v4
IMAGE=nvidia:ngc_azure_17_11:ngc-base-version-24_03_4_gen2:latest   # az vm image list -p nvidia -f ngc_azure_17_11 --all -o table
STORAGE=""                      # default: datakit + 8 hex of the subscription id (globally unique, 3-24 lowercase)
CONTAINER=datakit
PHASE=engines/titan/phases/longctx_sft_dpo.toml
REPO=""                         # git URL the VM clones (default: this checkout's origin)
SSH_KEY="$HOME/.ssh/id_rsa.pub"
SPOT=0
PRICE=3.673                     # $/GPU-hour for <run>/cost.json: Standard_NC24ads_A100_v4, eastus, pay-as-you-go
                                # (engines/titan/datakit_titan/cloud/prices.toml); with --spot pass yours
DRY_RUN=0

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; cat <<'OPTS'
options: --dry-run  --resource-group NAME  --location REGION  --vm-name NAME  --size SKU  --image URN
         --storage-account NAME  --container NAME  --phase FILE  --repo URL  --ssh-key FILE  --spot
         --price-per-hour USD (per GPU-hour, for cost.json; default the pay-as-you-go price above)
OPTS
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --resource-group) RG=$2; shift ;;
    --location) LOCATION=$2; shift ;;
    --vm-name) VM=$2; shift ;;
    --size) SIZE=$2; shift ;;
    --image) IMAGE=$2; shift ;;
    --storage-account) STORAGE=$2; shift ;;
    --container) CONTAINER=$2; shift ;;
    --phase) PHASE=$2; shift ;;
    --repo) REPO=$2; shift ;;
    --ssh-key) SSH_KEY=$2; shift ;;
    --spot) SPOT=1 ;;
    --price-per-hour) PRICE=$2; SET_PRICE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: $1: unknown option (fix: see --help)" >&2; exit 2 ;;
  esac
  shift
done

# run CMD...: print it (dry run) or run it; exists CMD...: whether a lookup succeeds (a dry run assumes not)
run() {
  if [ "$DRY_RUN" = 1 ]; then printf '+'; printf ' %q' "$@"; printf '\n'; else "$@"; fi
}
exists() {
  if [ "$DRY_RUN" = 1 ]; then printf '+'; printf ' %q' "$@"; printf '   # lookup\n'; return 1; fi
  "$@" >/dev/null 2>&1
}
value() {  # value DEFAULT CMD...: a query's output (a dry run prints the command and returns DEFAULT)
  local default=$1; shift
  if [ "$DRY_RUN" = 1 ]; then { printf '+'; printf ' %q' "$@"; printf '\n'; } >&2; echo "$default"; else "$@"; fi
}

if [ "$SPOT" = 1 ] && [ -z "${SET_PRICE:-}" ]; then
  echo "error: --price-per-hour: spot prices move by the hour, so none is assumed (fix: pass the spot price you see, e.g. --price-per-hour 1.10)" >&2; exit 2
fi
if ! [[ "$PRICE" =~ ^[0-9]+([.][0-9]+)?$ ]]; then echo "error: --price-per-hour: $PRICE is not a price in dollars (fix: e.g. 3.673)" >&2; exit 2; fi
if [ ! -f "$PHASE" ]; then echo "error: $PHASE: phase file not found (fix: run from the checkout's root, or pass --phase)" >&2; exit 2; fi
if [ "$DRY_RUN" = 0 ] && ! command -v az >/dev/null; then
  echo "error: az: the Azure CLI is not installed (fix: https://learn.microsoft.com/cli/azure/install-azure-cli, then az login)" >&2; exit 2
fi
if [ -z "$REPO" ]; then REPO=$(git remote get-url origin 2>/dev/null || true); fi
if [ -z "$REPO" ]; then echo "error: --repo: no git URL for the VM to clone (fix: pass --repo https://...)" >&2; exit 2; fi
SUB=$(value 00000000-0000-0000-0000-000000000000 az account show --query id -o tsv)
STORAGE=${STORAGE:-datakit$(echo "$SUB" | tr -d '-' | cut -c1-8)}
MIXTURE=$(sed -n 's/^mixture *= *"\([^"]*\)".*/\1/p' "$PHASE" | head -n1)
OUTPUT=$(sed -n 's/^output *= *"\([^"]*\)".*/\1/p' "$PHASE" | head -n1)
BLOB="https://$STORAGE.blob.core.windows.net/$CONTAINER"

echo "== resource group $RG ($LOCATION)"
exists az group show -n "$RG" || run az group create -n "$RG" -l "$LOCATION" -o none

echo "== storage account $STORAGE, container $CONTAINER (mixture + checkpoints)"
exists az storage account show -n "$STORAGE" -g "$RG" ||
  run az storage account create -n "$STORAGE" -g "$RG" -l "$LOCATION" --sku Standard_LRS --kind StorageV2 --min-tls-version TLS1_2 -o none
exists az storage container show -n "$CONTAINER" --account-name "$STORAGE" --auth-mode login ||
  run az storage container create -n "$CONTAINER" --account-name "$STORAGE" --auth-mode login -o none
if [ -d "$MIXTURE" ]; then  # upload the built mixture once (existing blobs are kept)
  run az storage blob upload-batch --account-name "$STORAGE" --auth-mode login -d "$CONTAINER" --destination-path "$MIXTURE" -s "$MIXTURE" --overwrite false -o none
fi

echo "== VM $VM ($SIZE, NGC image)"
run az vm image terms accept --urn "$IMAGE" -o none
if ! exists az vm show -g "$RG" -n "$VM"; then
  spot_args=()
  if [ "$SPOT" = 1 ]; then spot_args=(--priority Spot --eviction-policy Deallocate --max-price -1); fi
  run az vm create -g "$RG" -n "$VM" --size "$SIZE" --image "$IMAGE" --admin-username azureuser --ssh-key-values "$SSH_KEY" \
    --os-disk-size-gb 512 --public-ip-sku Standard --assign-identity "${spot_args[@]}" -o none
fi
PRINCIPAL=$(value "<vm-principal-id>" az vm show -g "$RG" -n "$VM" --query identity.principalId -o tsv)
SCOPE=$(value "<storage-account-id>" az storage account show -n "$STORAGE" -g "$RG" --query id -o tsv)
exists az role assignment list --assignee "$PRINCIPAL" --scope "$SCOPE" --role "Storage Blob Data Contributor" --query "[0].id" -o tsv ||
  run az role assignment create --assignee-object-id "$PRINCIPAL" --assignee-principal-type ServicePrincipal \
    --role "Storage Blob Data Contributor" --scope "$SCOPE" -o none

echo "== install (the README's make install) and train under tmux; checkpoints synced to $BLOB/$OUTPUT"
# WANDB_API_KEY goes in as a protected parameter (not logged by Azure); without it wandb stays offline
wandb_params=()
if [ -n "${WANDB_API_KEY:-}" ]; then
  if [ "$DRY_RUN" = 1 ]; then wandb_params=(--protected-parameters "WANDB_API_KEY=<redacted>"); else wandb_params=(--protected-parameters "WANDB_API_KEY=$WANDB_API_KEY"); fi
fi
BOOT="$(dirname "$0")/vm-bootstrap.sh"
run az vm run-command create -g "$RG" --vm-name "$VM" --name datakit-train --async-execution true --run-as-user azureuser \
  --script "@$BOOT" --parameters "REPO=$REPO" "PHASE=$PHASE" "BLOB=$BLOB" "MIXTURE=$MIXTURE" "OUTPUT=$OUTPUT" "PRICE=$PRICE" "${wandb_params[@]}" -o none

IP=$(value "<vm-public-ip>" az vm show -d -g "$RG" -n "$VM" --query publicIps -o tsv)
cat <<DONE
== done. Watch it: ssh azureuser@$IP -t tmux attach -t datakit    (wandb: your project page, if online)
   Spend so far: az consumption usage list -o json > usage.json && datakit cost --azure-usage usage.json
   Stop paying:  engines/titan/deploy/azure/teardown.sh --resource-group $RG --vm-name $VM
DONE
