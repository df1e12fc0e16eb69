#!/usr/bin/env bash
# The main command: install everything, then check that Pi runs and list its models.
# (Later: start JupyterLab with the Pi kernel.)  Extra arguments go to `pi_kernel doctor`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
printf '\n== pi-kernel doctor\n'
exec .venv/bin/python -m pi_kernel doctor "$@"
