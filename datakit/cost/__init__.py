"""`datakit cost`: every dollar the project has spent or committed, in one table.

- `runs.py`    synth ledgers (<out>/ledger.sqlite) and GPU runs (<run>/cost.json, written by `titan run`)
- `azure.py`   an Azure usage export (`az consumption usage list -o json`), both of its schemas
- `sky.py`     SkyPilot's own cluster cost report (`sky cost-report`), read from its environment
- `report.py`  totals against the plan's budget, the table, --json
"""
