#!/usr/bin/env bash
# Wheels for bench/gpu_check.sh on the lent GPU machine, which has Python 3.12 with torch,
# numpy, scipy, numba, jax, pandas and more (bench/gpu_image_packages.txt, as read off that
# image on 2026-11-17) and no network. Every package pinned in constraints.txt that the
# image lacks is downloaded here as a cp312 manylinux wheel into .whl/ (git-ignored); the
# device call then carries .whl and gpu_check.sh installs it into /tmp/site.
#   bench/gpu_wheels.sh     # .whl and the tracked files together must stay under the 64 MiB
#                           # a device call carries (2026-12-07: 62 MB of wheels + 2.5 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
norm() { tr 'A-Z_.' 'a-z--'; }
have=$(norm < bench/gpu_image_packages.txt)
# not needed by the check (the browser, the lab front end, optional IDE helpers, matminer
# and its database client), and torch itself: together the rest fits the 64 MiB a call carries
skip="torch jupyterlab playwright ruff notebook jupyter-server jupyterlab-server panel bokeh babel widgetsnbextension panel-material-ui jupyter-builder pymongo dnspython greenlet ase matminer debugpy jedi jupyterlab-widgets"
grep -E '^[A-Za-z0-9_.-]+==' constraints.txt | while IFS='=' read -r name _ version; do
  key=$(printf '%s' "$name" | norm)
  if grep -qx "$key" <<<"$have" || grep -qw "$key" <<<"$skip"; then continue; fi
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d .whl "$name==$version" 2>/dev/null \
    || python3 -m pip download -q --no-deps --no-binary=:none: -d .whl "$name==$version" \
       2>/dev/null || echo "no wheel for $name==$version" >&2
done
du -sh .whl
