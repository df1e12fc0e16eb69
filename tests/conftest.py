"""Fixtures shared by the whole suite: the real Pi, an isolated agent dir, the scripted LLM.

Pi always runs for real (the pinned 0.87.1 from ``npm ci``); the only double is the LLM
server on 127.0.0.1.  Pi never sees the user's home: HOME and PI_CODING_AGENT_DIR point into
the test's temporary directory.  After every test, no Pi started by it may still run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pi_kernel.rpc import PiInstall, locate_pi
from tests.agent_dir import PiEnv, isolated_env, write_agent_dir
from tests.llm_server import ScriptedLLM

REPO = Path(__file__).resolve().parents[1]
LEGACY_PI = REPO / "tests" / "legacy" / "node_modules" / ".bin" / "pi"
PROCESS_EXIT_TIMEOUT = 5.0
"""Seconds a Pi may take to disappear after its test ended before the test fails."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pi_install() -> PiInstall:
    """The project's pinned Pi; the suite fails (not skips) when it is missing."""
    install = locate_pi(REPO / "node_modules" / ".bin" / "pi")
    assert install.version == "0.87.1", install.describe()
    return install


@pytest.fixture(scope="session")
def legacy_install() -> PiInstall:
    install = locate_pi(LEGACY_PI)
    assert install.version == "0.73.1", install.describe()
    return install


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def pi_env(tmp_path: Path, llm: ScriptedLLM) -> PiEnv:
    """An environment whose Pi knows exactly the scripted provider's three models."""
    agent_dir = write_agent_dir(tmp_path / "agent", llm.base_url)
    return isolated_env(tmp_path, agent_dir)


def processes_of(root: Path) -> list[psutil.Process]:
    """Every process whose Pi agent dir lies under ``root``: Pi, its tools, test kernels.

    Matched by environment, not command line: Pi renames its process to ``pi``.
    """
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            agent_dir = process.environ().get("PI_CODING_AGENT_DIR", "")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if agent_dir.startswith(str(root)):
            found.append(process)
    return found


def is_pi(process: psutil.Process) -> bool:
    try:
        cmdline = process.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return bool(cmdline) and (cmdline[0] == "pi" or "rpc" in cmdline)


@pytest.fixture(autouse=True)
def no_pi_left_behind(tmp_path: Path) -> Iterator[None]:
    """Fail the test if a process it started (Pi, a tool, a kernel) outlives it."""
    yield
    assert_none_left(tmp_path)


def assert_none_left(root: Path, *, spare: int | None = None) -> None:
    """Fail if a process whose agent dir lies under ``root`` is still running (after a
    grace period); kill what is.  ``spare`` is a pid meant to outlive this check."""
    leftovers = [process for process in processes_of(root) if process.pid != spare]
    if not leftovers:
        return
    _, alive = psutil.wait_procs(leftovers, timeout=PROCESS_EXIT_TIMEOUT)
    # A zombie has exited; only its parent (a Jupyter server, say) has yet to reap it.
    alive = [process for process in alive if not _zombie(process)]
    for process in alive:
        process.kill()
    assert not alive, f"processes left running: {[(p.pid, p.name()) for p in alive]}"


def _zombie(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
