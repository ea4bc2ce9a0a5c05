"""Cloud runs through SkyPilot: `titan launch` (task generation, price, dry run) and the thin
`titan status / logs / down` wrappers over `sky`. See docs/cloud.md.

- `gpus.py`    cloud and GPU names (SkyPilot's), the estimate's catalogue entry for each GPU
- `prices.py`  $/hour: --price-per-hour, else SkyPilot's catalog, else the dated table prices.toml
- `sky.py`     where SkyPilot lives (its own virtual environment: `make cloud`) and how we call it
- `task.py`    phase file -> SkyPilot task YAML (resources, workdir, bucket mounts, setup, run)
- `launch.py`  `titan launch`: checks, estimate, dry run or `sky jobs launch`
- `cli.py`     the typer commands
"""
