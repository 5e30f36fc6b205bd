#!/usr/bin/env bash
# Create .venv and install the project with its dev extras, on a fresh machine (Python 3.11).
# - torch==2.13.0 first: the CPU build lies on disk here; a bare `torch` pulls a CUDA build.
# - lenscat without its dependencies: only its catalog CSV is read (never imported), and its
#   dependency ligo.skymap is heavy.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet torch==2.13.0
.venv/bin/pip install --quiet --no-deps lenscat==1.1.3
.venv/bin/pip install --quiet -e ".[dev]"
