#!/usr/bin/env bash
# Install what pi-kernel needs, into this checkout only: a Python virtual environment in .venv
# holding exactly requirements.lock (the package itself editable, with JupyterLab, the local
# demo model and the test tools), and the pinned Pi with its Node 22 in node_modules (npm ci).
# Safe to run again: each step is skipped when already done, and .venv is rebuilt from scratch
# when the lock changed, so it never holds a package the lock does not.
# Usage: scripts/install.sh [--tests]   (--tests also installs the compatibility Pis and Chromium
# for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-}
if [[ -z "$python" ]]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null; then python=$candidate; break; fi
  done
fi
[[ -n "$python" ]] || { echo "install: no python3 found; install Python >= 3.11" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }

# The stamp holds the lock's digest: anything else in it means .venv was built from another
# lock (or by hand) and is rebuilt.
want=$(sha256sum requirements.lock | cut -d' ' -f1)
stamp=.venv/.pi-kernel-lock
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  rm -rf .venv
  step "Python environment (.venv from requirements.lock, $($python --version))"
  "$python" -m venv .venv
  # Wheels only (--only-binary): nothing compiles.  pip still takes a minute or so, so it runs
  # with a progress line instead of silence.
  log=.venv/install.log
  .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off --only-binary :all: \
    --require-hashes --no-deps -r requirements.lock >"$log" 2>&1 &
  installing=$!
  started=$SECONDS
  while kill -0 "$installing" 2>/dev/null; do
    sleep 5
    if grep -q '^Installing collected packages' "$log"; then
      stage="installing them"
    else
      stage="$(grep -c '^Collecting ' "$log" || true) packages downloaded"
    fi
    printf '   %3d s, %s\n' $((SECONDS - started)) "$stage"
  done
  if ! wait "$installing"; then
    tail -n 30 "$log" >&2
    echo "install: installing requirements.lock failed (full log: $log)" >&2
    exit 1
  fi
  # The package itself, editable, built by the locked hatchling: nothing outside the lock.
  .venv/bin/python -m pip install --disable-pip-version-check --quiet \
    --no-deps --no-build-isolation -e .
  printf '   done in %d s\n' $((SECONDS - started))
  echo "$want" >"$stamp"
fi

npm_ci() {  # npm_ci DIR: install DIR's lock unless node_modules already matches it
  local dir=$1
  if [[ ! -f $dir/node_modules/.package-lock.json || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
    step "Node packages in ${dir} (npm ci)"
    npm ci --prefix "$dir" --no-audit --no-fund --no-update-notifier --loglevel=error
  fi
}
npm_ci .
if [[ "${1:-}" == "--tests" ]]; then
  npm_ci tests/pi-0.87
  npm_ci tests/legacy
  npm_ci tests/hub  # JupyterHub's proxy, for the deployment test
  # The browser tests drive Debian's Chromium (Playwright's own browser downloads are not
  # used), and the sandbox tests Debian's bubblewrap: install what is missing, as root or
  # through a password-less sudo.
  missing=()
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  [[ -x /usr/bin/bwrap ]] || missing+=(bubblewrap)
  if (( ${#missing[@]} )); then
    step "Debian packages for the browser and sandbox tests (apt-get install ${missing[*]})"
    if [[ $(id -u) -eq 0 ]]; then
      as_root=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      as_root=(sudo)
    else
      echo "install: the tests need Debian's ${missing[*]}; run 'apt-get install ${missing[*]}' as root" >&2
      exit 1
    fi
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
