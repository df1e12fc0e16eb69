"""The import-linter contracts say who sits above whom, and they bite.

Each case copies both packages, plants one import that runs the wrong way, and runs
``lint-imports`` on the copy with the project's own contracts: it must fail and name the
contract the import breaks.  The untouched copy passes, so a failure is the planted line's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pis import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
FLOORS = "The floors:"
ROOMS = "pi_kernel's rooms:"


def _lint(tmp_path: Path, plant: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "src"
    for package in ("pi_kernel", "pi_magics"):
        shutil.copytree(REPO / "src" / package, src / package)
    if plant is not None:
        module, line = plant
        target = src / module
        target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    # The copy comes first on the path, ahead of the editable install's src/.
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "500"}  # one line a contract
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(REPO / "pyproject.toml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )


def test_the_code_as_it_is_keeps_every_contract(tmp_path: Path):
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("plant", "contract"),
    [
        (("pi_kernel/session.py", "import pi_magics.magics"), FLOORS),
        (("pi_kernel/rpc/client.py", "import pi_kernel.session"), ROOMS),
        (("pi_magics/cell.py", "import pi_kernel.kernel.pikernel"), FLOORS),
        (("pi_kernel/turn.py", "import pi_kernel.kernel.routing"), ROOMS),
    ],
    ids=["engine-to-magics", "rpc-to-session", "magics-to-kernel", "engine-to-kernel"],
)
def test_an_upward_import_breaks_a_contract(tmp_path: Path, plant: tuple[str, str], contract: str):
    result = _lint(tmp_path, plant)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), result.stdout
