#!/usr/bin/env bash
# The main command: install everything, then start JupyterLab with Pi on the tour notebook,
# using your Pi's models or, when it has none, the local demo model.  Arguments go to
# `python -m pi_kernel start`: --headless runs the tour without a browser and prints where
# the executed notebook is; --help lists the others.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
printf '\n== pi-kernel start\n'
exec .venv/bin/python -m pi_kernel start "$@"
