#!/usr/bin/env bash
# Stop paying for what azure-deployment.sh created. Default: the VM and its disk, NIC and public IP; the
# storage account (mixture, checkpoints, cost.json) stays. --all: the whole resource group, storage included.
#   engines/titan/deploy/azure/teardown.sh [--dry-run] [--resource-group datakit-rg] [--vm-name datakit-a100] [--all]
set -euo pipefail
RG=datakit-rg
VM=datakit-a100
ALL=0
DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --resource-group) RG=$2; shift ;;
    --vm-name) VM=$2; shift ;;
    --all) ALL=1 ;;
    -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: $1: unknown option (fix: see --help)" >&2; exit 2 ;;
  esac
  shift
done
run() { if [ "$DRY_RUN" = 1 ]; then printf '+'; printf ' %q' "$@"; printf '\n'; else "$@"; fi; }
exists() {
  if [ "$DRY_RUN" = 1 ]; then printf '+'; printf ' %q' "$@"; printf '   # lookup\n'; return 0; fi
  "$@" >/dev/null 2>&1
}
if [ "$ALL" = 1 ]; then
  echo "== deleting resource group $RG: VM, disks, network AND the storage account (checkpoints, mixture)"
  exists az group show -n "$RG" && run az group delete -n "$RG" --yes --no-wait
  exit 0
fi
echo "== deleting VM $VM and its disk, NIC and public IP (storage stays)"
if exists az vm show -g "$RG" -n "$VM"; then
  run az vm delete -g "$RG" -n "$VM" --yes --force-deletion none
  run az disk delete -g "$RG" -n "${VM}_OsDisk" --yes --no-wait
  run az network nic delete -g "$RG" -n "${VM}VMNic" --no-wait
  run az network public-ip delete -g "$RG" -n "${VM}PublicIP"
fi
echo "== left: storage in $RG (az storage account list -g $RG -o table); delete it with --all when done"
