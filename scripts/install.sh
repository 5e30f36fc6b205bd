#!/usr/bin/env bash
# Create .venv and install the project with its dev extras, on a fresh machine (Python 3.11).
# - torch==2.13.0 first: the CPU build lies on disk here; a bare `torch` pulls a CUDA build.
# - lenscat without its dependencies: only its catalog CSV is read (never imported), and its
#   dependency ligo.skymap is heavy. It goes in last: pip checks the installed packages'
#   dependencies after an install that resolves dependencies, and would report lenscat's
#   missing ligo.skymap as a resolver "error" (harmless here); a --no-deps install skips that check.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet torch==2.13.0
.venv/bin/pip install --quiet -e ".[dev]"
.venv/bin/pip install --quiet --no-deps lenscat==1.1.3
