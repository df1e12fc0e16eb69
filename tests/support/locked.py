"""The pins of ``requirements.lock`` that apply here: read by the lock test and the drift check."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

from tests.support.pis import REPO

LOCK = REPO / "requirements.lock"
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+?)\s*(;(?P<marker>[^\\]+))?\s*\\?$"
)


def locked(lock: Path = LOCK) -> dict[str, str]:
    """Package name (canonical) -> version, for the pins whose markers this Python meets."""
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match is None:
            continue
        marker = match["marker"]
        if marker is None or Marker(marker.strip()).evaluate():
            pins[canonicalize_name(match["name"])] = match["version"]
    return pins


def drift() -> list[str]:
    """How this environment differs from the lock, a line per package."""
    from importlib.metadata import distributions

    pins = locked()
    installed = {canonicalize_name(dist.metadata["Name"]): dist.version for dist in distributions()}
    installed.pop("pi-kernel", None)
    return [
        f"{name}: {pins.get(name, 'not locked')} -> {installed.get(name, 'not installed')}"
        for name in sorted(pins.keys() | installed.keys())
        if pins.get(name) != installed.get(name)
    ]


if __name__ == "__main__":
    print("\n".join(f"     {line}" for line in drift()) or "     nothing")
