"""The Pis the suite runs: the project's pinned one and the compatibility installs under
``tests/``, each found where ``npm ci`` put it and checked against its pin."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pi_kernel.rpc import PiInstall, locate_pi
from pi_kernel.rpc.launch import PI_PACKAGES

REPO = Path(__file__).resolve().parents[2]
"""The checkout under test."""
TESTS = REPO / "tests"
DATA = TESTS / "data"
"""Recorded traces, conversations and test extensions."""


@dataclass(frozen=True)
class PinnedPi:
    """A Pi the suite runs: the folder whose ``package.json`` pins it (``npm ci`` there)."""

    folder: Path

    @property
    def package(self) -> str:
        manifest = json.loads((self.folder / "package.json").read_text(encoding="utf-8"))
        return next(name for name in manifest["dependencies"] if name in PI_PACKAGES)

    @property
    def version(self) -> str:
        manifest = json.loads((self.folder / "package.json").read_text(encoding="utf-8"))
        return str(manifest["dependencies"][self.package])

    @property
    def executable(self) -> Path:
        return self.folder / "node_modules" / ".bin" / "pi"

    def locate(self) -> PiInstall:
        """The installed Pi; the suite fails (not skips) when it is missing or not the pin."""
        install = locate_pi(self.executable)
        assert (install.package, install.version) == (self.package, self.version), (
            f"expected {self.package} {self.version} (pinned in {self.folder}/package.json), "
            f"found {install.describe()}"
        )
        return install


CURRENT_PI = PinnedPi(REPO)
"""The Pi the project ships and the whole suite runs on."""
COMPAT_PIS = (PinnedPi(REPO / "tests" / "pi-0.87"), PinnedPi(REPO / "tests" / "legacy"))
"""Older Pis people still run: the ``contract`` tests run on each of them as well."""
LEGACY_PI = COMPAT_PIS[-1]
"""The oldest: no ``agent_settled``, snapshot-heavy ``message_update`` records."""
