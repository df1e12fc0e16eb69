"""The Python environment under test is exactly ``requirements.lock``.

What CI tests is what a fresh clone installs: ``scripts/install.sh`` builds ``.venv`` from
the lock alone.  The drift check (``scripts/test.sh --latest`` / ``--lowest``) runs the suite
in an environment that deliberately differs, and deselects this test (marker ``lock``).
"""

from __future__ import annotations

import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.locked import drift, locked
from tests.support.pis import REPO

pytestmark = pytest.mark.lock


def test_every_installed_package_is_the_locked_version_and_nothing_else_is_installed():
    assert len(locked()) > 100, "the lock was not read"
    assert drift() == []  # the package itself, installed editable, is left out


def test_the_lock_satisfies_every_requirement_of_pyproject():
    """A dependency added or moved in pyproject.toml without ``bash scripts/lock.sh`` fails."""
    pins = locked()
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
