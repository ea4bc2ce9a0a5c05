#!/usr/bin/env bash
# The GPU benchmark of the plan's model in one command (benchmarks/gpu/bench.py --help says what it runs):
#   benchmarks/gpu/run.sh            one H100/H200, about 7-8 minutes: data preparation + runs, none started
#                                    unless it should end within a 420 s budget (--budget-s)
#   benchmarks/gpu/run.sh --smoke    CPU, tiny preset: every section for a few steps (CI)
# Results: $OUT/gpu_bench.{json,md} when OUT is set, else benchmarks/gpu/out/.
# Needs the project installed (`make install`; on a GPU machine with the CUDA build of torch).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -c "import datakit, datakit_titan" 2>/dev/null; then
  echo "error: $PY cannot import datakit and datakit_titan (fix: run \`make install\`, or set PYTHON to an environment that has them)" >&2
  exit 2
fi
exec "$PY" benchmarks/gpu/bench.py "$@"
