"""The Python environment under test is exactly ``requirements.lock``.

What CI tests is what a fresh clone installs: ``scripts/install.sh`` builds ``.venv`` from
the lock alone.  The drift check (``scripts/test.sh --latest`` / ``--lowest``) runs the suite
in an environment that deliberately differs, and deselects this test (marker ``lock``).
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import distributions
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

pytestmark = pytest.mark.lock

PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+?)\s*(;(?P<marker>[^\\]+))?\s*\\?$"
)


def locked(lock: Path) -> dict[str, str]:
    """The lock's pins that apply to this interpreter and platform."""
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match is None:
            continue
        marker = match["marker"]
        if marker is None or Marker(marker.strip()).evaluate():
            pins[canonicalize_name(match["name"])] = match["version"]
    return pins


def test_every_installed_package_is_the_locked_version_and_nothing_else_is_installed():
    pins = locked(REPO / "requirements.lock")
    assert len(pins) > 100, "the lock was not read"
    installed = {canonicalize_name(dist.metadata["Name"]): dist.version for dist in distributions()}
    installed.pop("pi-kernel")  # the package itself, installed editable from the checkout
    assert installed == pins


def test_the_lock_satisfies_every_requirement_of_pyproject():
    """A dependency added or moved in pyproject.toml without ``bash scripts/lock.sh`` fails."""
    pins = locked(REPO / "requirements.lock")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"].values()
    wanted = [Requirement(spec) for spec in project["dependencies"]]
    wanted += [Requirement(spec) for extra in extras for spec in extra]
    unmet = [  # a package missing from the lock counts as version 0.dev0: nothing satisfies it
        str(requirement)
        for requirement in wanted
        if canonicalize_name(requirement.name) != "pi-kernel"
        and (requirement.marker is None or requirement.marker.evaluate())
        and not requirement.specifier.contains(
            pins.get(canonicalize_name(requirement.name), "0.dev0"), prereleases=True
        )
    ]
    assert unmet == [], "run bash scripts/lock.sh"
