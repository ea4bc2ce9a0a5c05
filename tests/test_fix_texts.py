"""Every `fix:` text that names a spec key or a command option names one that exists (issue 16: the
unknown-price fix said `base_model`, a key no provider profile has; the real one is `price_model`).

The test reads the source of datakit and the engine (AST: every `fix=` / `fix_hint=` argument and the
strings it is built from), picks out what reads as a key, and resolves each against the validated models
of every file a user writes (mixture specs, [curate] and filters, synth specs, phase files) and against
the options of every `datakit` / `titan` command."""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "datakit", ROOT / "engines" / "titan" / "datakit_titan"]

# Identifiers in fix texts that read like keys but are something else, with what they are.
NOT_KEYS = {
    "int_score": "a column the quality_score filter writes (and the fineweb-edu schema has)",
    "blob_id": "the Software Heritage blob-id column",
    "kept_docs_frac": "a plan column",
    "anon": "an fsspec S3 option inside hydrate.storage_options",
}
STOP = {"it", "its", "the", "a", "an", "them", "that", "this", "these", "one", "up", "more", "at", "to", "and", "or", "with"}
OUR_COMMANDS = ("datakit", "titan")
FILE_SUFFIX = re.compile(r"\.(py|toml|md|json|jsonl|parquet|bin|gz|sqlite|duckdb|ds|com|txt|index|loss)\b")


# -- what the fix texts say ---------------------------------------------------------------------------
def _text(node: ast.AST, assigned: dict[str, list[ast.AST]]) -> list[str]:
    """The string pieces an expression is built from (f-string values become `{}`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)]
    if isinstance(node, ast.BinOp):
        return ["".join(_text(node.left, assigned)) + "".join(_text(node.right, assigned))]
    if isinstance(node, ast.IfExp):
        return _text(node.body, assigned) + _text(node.orelse, assigned)
    if isinstance(node, ast.Dict):
        return [t for v in node.values for t in _text(v, assigned)]
    if isinstance(node, ast.Call):  # e.g. _FIXES.get(kind, "default"), {...}.get(status, "...")
        return [t for a in [node.func, *node.args] for t in _text(a, assigned)]
    if isinstance(node, ast.Attribute):
        return _text(node.value, assigned)
    if isinstance(node, ast.Name):
        return [t for v in assigned.get(node.id, []) for t in _text(v, assigned)]
    return []


def fix_texts() -> list[tuple[str, str]]:
    """(where, text) for every fix given to a UserError (and every formatter's fix_hint) in the code base."""
    out = []
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.py")):
            tree = ast.parse(path.read_text())
            assigned: dict[str, list[ast.AST]] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign):
                    for t in node.targets:
                        if isinstance(t, ast.Name):
                            assigned.setdefault(t.id, []).append(node.value)
            for node in ast.walk(tree):
                if isinstance(node, ast.keyword) and node.arg in ("fix", "fix_hint"):
                    for text in _text(node.value, assigned):
                        out.append((f"{path.relative_to(ROOT)}:{node.value.lineno}", text))
    return out


def mentions(text: str) -> list[tuple[str, str]]:
    """(kind, name) of what a fix text names as a key ("key", "path", "option")."""
    ours = re.sub(r"`([^`]*)`|'([^']*)'", lambda m: m.group(0) if (m.group(1) or m.group(2) or "").startswith(OUR_COMMANDS) or " " not in m.group(0) else " ", text)
    found = [("option", m) for m in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", ours)]  # options of our commands, not others'
    plain = re.sub(r"\{[^{}]*\}|<[^>]*>", "ZZ", text)  # placeholders
    plain = re.sub(r'"[^"]*"|\'[^\']*\'|\S+://\S+', " ", plain)  # values, URLs
    plain = re.sub(r"`[^`]*`", lambda m: m.group(0) if " " not in m.group(0) else " ", plain)  # keep `key`, drop `commands ...`
    for section, key in re.findall(r"\[\[?([a-z_]+)\]\]?\s+([a-z_][a-z0-9_]*)", plain):
        if key not in STOP:
            found.append(("path", f"{section}.{key}"))
    for m in re.finditer(r"(?<![\w./-])([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+)(?![\w/])", plain):
        if not FILE_SUFFIX.search(m.group(0)) and not m.group(0).startswith(("e.g", "i.e", "datakit.", "datakit_titan.")):
            found.append(("path", m.group(1)))
    for m in re.finditer(r"(?<![\w.\[-])([a-z_][a-z0-9_]*)\s*=\s", plain):
        found.append(("key", m.group(1)))
    for m in re.finditer(r"\b(?:set|correct|raise|lower|point)\s+([a-z_][a-z0-9_.]*)", plain):
        if m.group(1) not in STOP and "." not in m.group(1):
            found.append(("key", m.group(1)))
    for m in re.finditer(r"(?<![\w.\[/-])([a-z][a-z0-9]*_[a-z0-9_]+)(?![\w./-])", plain):
        found.append(("key", m.group(1)))
    return sorted(set(found))


# -- what exists ----------------------------------------------------------------------------------------
def _models(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models(a)]


def key_tree() -> dict[str, set[type[BaseModel]]]:
    """Every key of every user-written file -> the models it holds (empty for a leaf); roots are TOML tables."""
    from datakit.curate.filters import HEURISTIC_FILTERS, allowed_params
    from datakit.curate.scoring import SCORER_NAME, SCORER_PARAMS
    from datakit.curate.spec import CurateSpec
    from datakit.spec.mixture import MixtureSpec
    from datakit.synth.dpo_llm import DpoSpec
    from datakit.synth.planning_spec import PlanningSpec
    from datakit_titan.prefs.phase import PrefsPhase

    tree: dict[str, set] = {}
    seen: set = set()

    def add(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, f in model.model_fields.items():
            subs = _models(f.annotation)
            tree.setdefault(name, set()).update(subs)
            for s in subs:
                add(s)

    for root in (MixtureSpec, CurateSpec, PlanningSpec, DpoSpec, PrefsPhase):
        add(root)
    tree.setdefault("curate", set()).add(CurateSpec)
    for name in HEURISTIC_FILTERS:  # filter parameters: { name = "gopher_repetition", dup_line_frac = 0.3 }
        for p in allowed_params(name):
            tree.setdefault(p, set())
    for p in (*SCORER_PARAMS, SCORER_NAME, "name", *HEURISTIC_FILTERS):
        tree.setdefault(p, set())
    return tree


def resolves(path: str, tree: dict[str, set[type[BaseModel]]]) -> bool:
    first, *rest = path.split(".")
    models = tree.get(first)
    if models is None:
        return False
    for part in rest:
        if not models:
            return False  # a leaf has no keys below it
        nxt = set()
        for m in models:
            if part in m.model_fields:
                nxt.update(_models(m.model_fields[part].annotation))
                nxt.add(None)  # marks "found"
        if not nxt:
            return False
        models = {m for m in nxt if m is not None}
    return True


def cli_options() -> set[str]:
    import click
    import typer

    from datakit.cli.main import app as datakit_app
    from datakit_titan.cli import app as titan_app

    out: set[str] = set()

    def walk(cmd: click.Command) -> None:
        out.update(o for p in cmd.params for o in p.opts if o.startswith("--"))
        for sub in (getattr(cmd, "commands", None) or {}).values():
            walk(sub)

    walk(typer.main.get_command(datakit_app))
    walk(typer.main.get_command(titan_app))
    return out


@pytest.fixture(scope="module")
def known():
    return key_tree(), cli_options()


def bad_mentions(text: str, known) -> list[str]:
    tree, options = known
    bad = []
    for kind, name in mentions(text):
        if kind == "option":
            ok = name in options
        elif kind == "path":
            ok = resolves(name, tree)
        else:
            ok = name in tree or name in NOT_KEYS
        if not ok:
            bad.append(f"{kind} {name}")
    return bad


def test_the_checker_catches_the_issues_text(known):
    old = "set price_in_usd_per_mtok and price_out_usd_per_mtok in the provider profile (or base_model to a model litellm prices)"
    assert bad_mentions(old, known) == ["key base_model"]
    assert bad_mentions(old.replace("base_model", "price_model"), known) == []
    assert bad_mentions("lower batch.per_gpu (raise grad_accum) or set [mixture] seq_lenn", known) == ["key seq_lenn", "path mixture.seq_lenn"]
    assert bad_mentions("pass --vocab-size 4096 or --vocabulary 10", known) == ["option --vocabulary"]


def test_every_fix_text_names_real_keys_and_options(known):
    texts = fix_texts()
    assert len(texts) > 100  # the walk found the code base's fixes
    checked = [(where, text, m) for where, text in texts for m in mentions(text)]
    assert len(checked) > 40  # and keys in them: the test cannot pass by finding nothing
    bad = [f"{where}: {b} in {text!r}" for where, text in texts for b in bad_mentions(text, known)]
    assert not bad, "\n".join(bad)
