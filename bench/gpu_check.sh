#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): GPU tests, benches at GPU size, one full-size notebook,
# results in bench/gpu-results.json. On the lent GPU machine (Python 3.12 with torch, numba,
# jax and scipy, no network), labkit's other dependencies travel as wheels in .whl/, made
# here by `bench/gpu_wheels.sh`; they are installed into /tmp/site first. Dry run on a CPU:
#   bench/gpu_check.sh --device cpu --quick
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ] && ! command -v nvidia-smi >/dev/null; then PY=.venv/bin/python; else PY=python3; fi
fi
# the wheels are built for the GPU image's Python; a dry run in .venv has them installed
if [ "$PY" != .venv/bin/python ] && [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
exec "$PY" bench/gpu_check.py "$@"
