#!/usr/bin/env bash
# The whole test suite: install (with the legacy Pi), lint, type-check, then pytest.
# Extra arguments go to pytest.  Exits non-zero on any failure, including "no tests ran".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --tests

printf '\n== ruff\n'
.venv/bin/ruff check src tests bench scripts
.venv/bin/ruff format --check src tests bench scripts
printf '\n== mypy --strict\n'
.venv/bin/mypy
printf '\n== pytest\n'
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [[ $status -eq 5 ]]; then
  echo "test: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit $status
