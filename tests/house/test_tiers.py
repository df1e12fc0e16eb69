"""The fast tier's guard knows a Pi, a kernel and the main command when it sees one start,
and lets the fast tier's own helpers (a stand-in program, lint-imports, git) through."""

from __future__ import annotations

import sys

import pytest

from tests.support.pis import CURRENT_PI
from tests.support.tiers import starts_pi_or_kernel

PY = sys.executable


@pytest.mark.parametrize(
    "argv",
    [
        [str(CURRENT_PI.executable), "--mode", "rpc", "--no-session"],
        ["node", "/x/node_modules/@earendil-works/pi-coding-agent/dist/cli.js", "--version"],
        [PY, "-m", "ipykernel_launcher", "-f", "/tmp/kernel.json"],
        [PY, "-m", "pi_kernel.kernel", "-f", "/tmp/kernel.json"],
        [PY, "-m", "pi_kernel", "start", "--headless"],
        ["bash", "scripts/start.sh", "--headless"],
        [PY, "-m", "jupyterhub", "-f", "config.py"],
    ],
)
def test_a_pi_a_kernel_or_the_main_command_is_seen(argv: list[str]):
    assert starts_pi_or_kernel(argv)


@pytest.mark.parametrize(
    "argv",
    [
        [PY, "stand_in.py", "stubborn"],
        ["/tmp/nowhere/pi"],  # a path that is no Pi (the missing-program test)
        ["lint-imports", "--no-cache"],
        [PY, "-m", "pi_kernel", "--help"],
    ],
)
def test_what_the_fast_tier_may_run_passes(argv: list[str]):
    assert not starts_pi_or_kernel(argv)
