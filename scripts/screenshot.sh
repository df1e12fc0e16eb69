#!/usr/bin/env bash
# The README's picture of a %%pi cell, made by the browser test from a real run (JupyterLab in
# Chromium, the real Pi, the scripted model) and copied to docs/images/pi-cell.png to commit.
# Usage: bash scripts/screenshot.sh   (after scripts/install.sh --tests)
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_lab.py -k pi_magic_streams
mkdir -p docs/images
cp test-artifacts/e2e/pi-cell.png docs/images/pi-cell.png
echo "screenshot: docs/images/pi-cell.png"
