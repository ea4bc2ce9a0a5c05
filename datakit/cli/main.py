"""The `datakit` command: a thin layer over library functions.

Each command group lives in its own module and registers a `typer.Typer` here.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from datakit.errors import UserError

# litellm fetches a price map at import unless told not to; we never want network at import time.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# third-party module -> the datakit extra that installs it (pyproject.toml); a command that needs a missing
# one says which extra to install instead of a traceback
EXTRA_OF = {
    **dict.fromkeys(["datatrove", "datasets", "orjson", "pyarrow", "duckdb", "polars", "tokenizers", "fsspec", "matplotlib",
                     "spacy", "s3fs"], "build"),
    **dict.fromkeys(["litellm", "tenacity", "datasketch", "aiohttp"], "synth"),
    "transformers": "score",
}


def missing_extra(e: ModuleNotFoundError) -> UserError | None:
    """The UserError for a command whose extra is not installed (None: not one of ours, a real bug)."""
    root = (e.name or "").split(".")[0]
    extra = EXTRA_OF.get(root)
    if extra is None:
        return None
    return UserError(f"this command needs {root}, which is not installed", field=f"datakit[{extra}]",
                     fix=f"pip install 'datakit[{extra}]' (or 'datakit[all]')")


app = typer.Typer(
    help="datakit: build curated, token-accounted training mixtures and synthetic planning data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module, group name, help). A module missing here means that part is not built yet.
GROUPS = [
    ("datakit.cli.mix", "mix", "Plan and build mixtures from TOML specs (mixtures/*.toml)."),
    ("datakit.cli.tokens", "tokens", "Report on and query a built mixture's token accounting."),
    ("datakit.cli.tokenizer", "tokenizer", "Train the byte-level BPE tokenizer."),
    ("datakit.cli.synth", "synth", "Generate synthetic planning, DPO and SFT data under a hard dollar budget."),
    ("datakit.cli.demo", None, None),
    ("datakit.cli.verify", None, None),
    ("datakit.cli.cost", None, None),
]
# Modules that only add commands to an existing group (imported for their side effect).
EXTENSIONS = ["datakit.cli.synth_records"]

for module_name, name, help_text in GROUPS:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        continue
    if name is None:
        module.register(app)
    else:
        app.add_typer(module.app, name=name, help=help_text)
for module_name in EXTENSIONS:
    try:
        importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise


def main() -> None:
    try:
        rc = app(standalone_mode=False)  # returns typer's exit code (130 on Ctrl-C) instead of exiting
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except UserError as e:
        print(e.render(), file=sys.stderr)
        sys.exit(e.exit_code)
    except ModuleNotFoundError as e:
        err = missing_extra(e)
        if err is None:
            raise
        print(err.render(), file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except Exception as e:  # click's usage errors (typer vendors click, so match on the interface)
        if type(e).__name__ == "NoArgsIsHelpError":
            sys.exit(0)  # help was printed
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            sys.exit(e.exit_code)
        if type(e).__name__ == "Abort":
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
