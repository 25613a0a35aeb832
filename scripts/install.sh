#!/usr/bin/env bash
# Install codesign into a fresh virtual environment at .venv (or $VENV).
# torch 2.13.0 (CPU) first, so that no other requirement can pull a CUDA build; then the
# package with its dev and dask extras; then the peer SNN libraries used by the equivalence tests and
# the benchmarks, without their dependencies (they would otherwise replace torch).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q -e ".[dev,dask]"
"$VENV/bin/pip" install -q --no-deps snntorch==1.0.0 spikingjelly==2.0.0 loguru==0.7.3
"$VENV/bin/python" -c "import torch, codesign; print('codesign', codesign.__version__, 'torch', torch.__version__)"
