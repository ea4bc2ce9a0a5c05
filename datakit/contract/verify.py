"""Verify a built mixture (Contract 2) against its manifest: the one check every consumer calls.

    from datakit.contract import verify_mixture

    report = verify_mixture("data/mixtures/midtrain")       # sizes + sha256 + structure + accounting totals
    report = verify_mixture(folder, quick=True)             # sizes only: seconds for any size of mixture
    report.raise_if_bad()                                   # IntegrityError (exit 1) listing every bad file

Used by `datakit verify`, `datakit tokens report`, `datakit mix build` (before it skips a finished
build), `titan run` (before training) and, later, export and eval.

What is checked, for every shard the manifest lists:
  quick   `.ds`, `.ds.index` and (where `loss_sha256` is set) `.ds.loss` exist with the sizes the
          manifest implies: `.ds` = size_bytes = n_tokens x token size, `.ds.index` = 8 x n_docs,
          `.ds.loss` = n_tokens; no `.ds.loss` the manifest does not list (it would mask labels);
          per source the shards add up to tokens_written / docs_written, the sources to the totals;
          accounting.duckdb exists.
  full    + sha256 of every file == the manifest's; structure: document ends strictly increasing and
          the last == n_tokens, loss mask values 0/1, token ids < the vocabulary; accounting.duckdb's
          `docs`, `shards` and `sources` tables agree with the manifest per shard and per source;
          the tokenizer file, where it still exists at the manifest's path, has the manifest's sha256.

Structure is also checked whenever a shard is opened (`datakit.contract.shards.read_shard` calls
`structure_problems`), so even an unverified read never trains on a broken index. The accounting check
needs DuckDB (datakit's `build` extra); without it, a full check says so in a note and skips that part.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datakit.contract.accounting import DB_NAME
from datakit.contract.manifest import MANIFEST_NAME, Manifest, Shard, load_manifest, sha256_file
from datakit.contract.shards import INDEX_ENTRY_BYTES, structure_problems, token_dtype
from datakit.errors import IntegrityError


@dataclass(frozen=True)
class Problem:
    path: str  # relative to the mixture folder
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


@dataclass
class VerifyReport:
    folder: Path
    quick: bool
    n_files: int = 0  # files checked
    n_bytes: int = 0  # bytes hashed (full) or sized (quick)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    spec_path: str | None = None  # the spec that built it (from the build's .work/spec.json), for the fix

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_files(self) -> list[str]:
        return sorted({p.path for p in self.problems})

    def summary(self) -> str:
        how = "sizes" if self.quick else "sizes, sha256, structure, accounting totals"
        head = (f"ok: {self.folder}: {self.n_files:,} files, {self.n_bytes / 1e6:,.1f} MB match the manifest ({how}; {self.seconds:.1f} s)"
                if self.ok else f"{self.folder}: {len(self.bad_files)} of {self.n_files:,} files do not match the manifest ({how})")
        return "\n".join([head, *(f"  {p}" for p in self.problems), *(f"  note: {n}" for n in self.notes)])

    def error(self) -> IntegrityError:
        spec = self.spec_path or "<spec.toml>"
        return IntegrityError(
            f"{len(self.bad_files)} of {self.n_files:,} files do not match the manifest (first: {self.problems[0]})", file=self.folder,
            fix=f"`datakit mix build {spec}` rebuilds them (it verifies what it would skip)",
            details=[str(p) for p in self.problems],
        )

    def raise_if_bad(self) -> "VerifyReport":
        if not self.ok:
            raise self.error()
        return self


def _size(p: Path) -> int | None:
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return None


def _check_shard(folder: Path, sh: Shard, manifest: Manifest, quick: bool) -> tuple[list[Problem], int, int]:
    """(problems, files checked, bytes) for one shard and its index / loss files."""
    token_size = manifest.tokenizer.token_size_bytes
    ds = folder / sh.path
    files = {  # name -> (path, expected size, expected sha256)
        sh.path: (ds, sh.size_bytes, sh.sha256),
        sh.path + ".index": (Path(f"{ds}.index"), sh.n_docs * INDEX_ENTRY_BYTES, sh.index_sha256),
    }
    if sh.loss_sha256 is not None:
        files[sh.path + ".loss"] = (Path(f"{ds}.loss"), sh.n_tokens, sh.loss_sha256)
    problems: list[Problem] = []
    if sh.size_bytes != sh.n_tokens * token_size:
        problems.append(Problem(sh.path, f"the manifest says {sh.size_bytes:,} bytes for {sh.n_tokens:,} tokens of {token_size} bytes"))
    n_bytes = 0
    intact = True
    max_value: dict[str, int] = {}  # largest token id / mask value, taken in the hashing pass
    for name, (p, want_size, want_sha) in files.items():
        size = _size(p)
        if size is None:
            problems.append(Problem(name, "missing"))
            intact = False
            continue
        n_bytes += size
        if size != want_size:
            problems.append(Problem(name, f"{size:,} bytes, the manifest implies {want_size:,}"))
            intact = False
        elif not quick:
            dtype = {sh.path: token_dtype(token_size), sh.path + ".loss": np.dtype(np.uint8)}.get(name)
            sha, max_value[name] = _sha256_and_max(p, dtype)
            if sha != want_sha:
                problems.append(Problem(name, "sha256 differs from the manifest (the file was changed or damaged)"))
    if sh.loss_sha256 is None and _size(Path(f"{ds}.loss")) is not None:
        problems.append(Problem(sh.path + ".loss", "a loss mask the manifest does not list (it would mask labels in training)"))
    if not quick and intact:
        ends = np.fromfile(f"{ds}.index", dtype="<u8")
        loss_len = sh.n_tokens if sh.loss_sha256 is not None else None  # sizes matched above
        problems += [Problem(sh.path + ".index", w) for w in structure_problems(sh.n_tokens, ends, loss_len)]
        if max_value.get(sh.path, -1) >= manifest.tokenizer.vocab_size:
            problems.append(Problem(sh.path, f"token id {max_value[sh.path]:,} >= vocab size {manifest.tokenizer.vocab_size:,}"))
        if max_value.get(sh.path + ".loss", 0) > 1:
            problems.append(Problem(sh.path + ".loss", f"loss mask value {max_value[sh.path + '.loss']} (only 0 and 1 are valid)"))
    return problems, len(files), n_bytes


def _sha256_and_max(path: Path, dtype: np.dtype | None, chunk_bytes: int = 1 << 22) -> tuple[str, int]:
    """sha256 of a file and (for token / mask files) its largest value, in one read."""
    h = hashlib.sha256()
    largest = -1
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):  # chunk_bytes is a multiple of every token size
            h.update(block)
            if dtype is not None:
                largest = max(largest, int(np.frombuffer(block, dtype=dtype).max()))
    return h.hexdigest(), largest


def _check_totals(manifest: Manifest) -> list[Problem]:
    out = []
    for s in manifest.sources:
        if sum(sh.n_tokens for sh in s.shards) != s.tokens_written or sum(sh.n_docs for sh in s.shards) != s.docs_written:
            out.append(Problem(MANIFEST_NAME, f"source {s.name}: its shards do not add up to tokens_written / docs_written"))
    if sum(s.tokens_written for s in manifest.sources) != manifest.total_tokens or sum(s.docs_written for s in manifest.sources) != manifest.total_docs:
        out.append(Problem(MANIFEST_NAME, "the sources do not add up to total_tokens / total_docs"))
    return out


def _check_accounting(folder: Path, manifest: Manifest) -> list[Problem]:
    """accounting.duckdb's docs / shards / sources tables against the manifest, per shard and per source."""
    import duckdb

    try:
        con = duckdb.connect(str(folder / DB_NAME), read_only=True)
    except duckdb.Error as e:
        return [Problem(DB_NAME, f"cannot be opened: {e}")]
    out = []
    try:
        per_shard = {(a, b): (int(c), int(d)) for a, b, c, d in
                     con.execute("select source, shard, count(*), sum(tokens) from docs group by 1, 2").fetchall()}
        shards = {r[0]: r[1:] for r in con.execute("select path, tokens, docs, size_bytes, sha256 from shards").fetchall()}
        sources = {r[0]: r[1:] for r in con.execute("select name, tokens_written, docs_written from sources").fetchall()}
    except duckdb.Error as e:
        return [Problem(DB_NAME, f"cannot be read: {e}")]
    finally:
        con.close()
    want_shards = {}
    for s in manifest.sources:
        if sources.get(s.name) != (s.tokens_written, s.docs_written):
            out.append(Problem(DB_NAME, f"table sources, {s.name}: {sources.get(s.name)} != the manifest's (tokens, docs) "
                                        f"({s.tokens_written}, {s.docs_written})"))
        for sh in s.shards:
            want_shards[sh.path] = (sh.n_tokens, sh.n_docs, sh.size_bytes, sh.sha256)
            got = per_shard.pop((s.name, Path(sh.path).name), (0, 0))
            if got != (sh.n_docs, sh.n_tokens):
                out.append(Problem(DB_NAME, f"table docs, {sh.path}: {got[0]:,} documents / {got[1]:,} tokens, "
                                            f"the manifest says {sh.n_docs:,} / {sh.n_tokens:,}"))
    for (src, shard), (n, t) in sorted(per_shard.items()):
        out.append(Problem(DB_NAME, f"table docs: {n:,} documents of {src}/{shard}, a shard the manifest does not list"))
    if shards != want_shards:
        diff = sorted(set(shards.items()) ^ set(want_shards.items()))
        out.append(Problem(DB_NAME, f"table shards disagrees with the manifest for {len({p for p, _ in diff})} shards (first: {diff[0][0]})"))
    return out


def _has_duckdb() -> bool:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


def _progress(total: int, enabled: bool):
    """A tqdm bar where tqdm is installed and asked for; else a stand-in with the same two methods."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        enabled = False
    if enabled:
        return tqdm(total=total, desc="verify", unit="shard", leave=False, disable=None)  # None: no bar off a terminal

    class _Quiet:
        def update(self, n: int = 1) -> None: ...
        def __enter__(self): return self
        def __exit__(self, *exc) -> None: ...

    return _Quiet()


def _spec_path(folder: Path) -> str | None:
    marker = folder / ".work" / "spec.json"
    try:
        return json.loads(marker.read_text()).get("spec_path")
    except (OSError, ValueError):
        return None


def verify_mixture(folder: str | os.PathLike, quick: bool = False, *, manifest: Manifest | None = None, progress: bool = False,
                   workers: int | None = None) -> VerifyReport:
    """Check a built mixture's files against its manifest; return a report (see the module docstring).

    quick: sizes only (no hashing, no reading). manifest: the already loaded manifest (else read, and a
    missing or malformed one is a UserError). workers: threads hashing shards (default: CPUs, at most 8).
    """
    started = time.time()
    folder = Path(folder)
    manifest = manifest or load_manifest(folder)
    report = VerifyReport(folder=folder, quick=quick, spec_path=_spec_path(folder))
    report.problems += _check_totals(manifest)
    shards = [sh for s in manifest.sources for sh in s.shards]
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool, _progress(len(shards), progress) as bar:
        for problems, n_files, n_bytes in pool.map(lambda sh: _check_shard(folder, sh, manifest, quick), shards):
            report.problems += problems
            report.n_files += n_files
            report.n_bytes += n_bytes
            bar.update(1)
    db = folder / DB_NAME
    report.n_files += 1
    if not db.exists():
        report.problems.append(Problem(DB_NAME, "missing"))
    elif not quick:
        if _has_duckdb():
            report.problems += _check_accounting(folder, manifest)
        else:
            report.notes.append(f"{DB_NAME} not checked: DuckDB is not installed (pip install 'datakit[build]')")
    if not quick:
        tok = Path(manifest.tokenizer.path)
        if tok.exists():
            report.n_files += 1
            if sha256_file(tok) != manifest.tokenizer.sha256:
                report.problems.append(Problem(str(tok), "this tokenizer's sha256 differs from the one the mixture was built with"))
        else:
            report.notes.append(f"tokenizer {tok} not found from here: not checked")
    report.seconds = time.time() - started
    return report
