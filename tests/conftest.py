"""Fixtures shared by the whole suite: the real Pi, an isolated agent dir, the scripted LLM.

Pi always runs for real: the project's pinned Pi (``npm ci`` in the checkout) and, for the
tests marked ``contract``, each of the compatibility Pis under ``tests/`` too.  The only
double is the LLM server on 127.0.0.1.  Pi never sees the user's home: HOME and
PI_CODING_AGENT_DIR point into the test's temporary directory.  After every test, no Pi
started by it may still run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from pi_kernel.rpc import PiInstall, locate_pi
from pi_kernel.rpc.launch import ENV_PI_PATH, PI_PACKAGES
from tests.agent_dir import PiEnv, isolated_env, write_agent_dir
from tests.llm_server import ScriptedLLM

if TYPE_CHECKING:
    from tests.kernel_harness import KernelHarness

REPO = Path(__file__).resolve().parents[1]
PROCESS_EXIT_TIMEOUT = 5.0
"""Seconds a Pi may take to disappear after its test ended before the test fails."""


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


LIVE_FIXTURES = frozenset(
    {"pi_install", "legacy_install", "kernel", "kernels_prefix", "lab", "page", "start_kernel"}
)
"""A test that uses one of these starts a Pi or a kernel: it is ``live``."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the fast tier: only tests that start no kernel and no Pi (and fail one that does)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that start a kernel or a Pi ``live``; ``--fast`` leaves them out."""
    for item in items:
        if LIVE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)
    if config.getoption("fast"):
        live = [item for item in items if item.get_closest_marker("live")]
        config.hook.pytest_deselected(items=live)
        items[:] = [item for item in items if not item.get_closest_marker("live")]


def starts_pi_or_kernel(argv: Sequence[str]) -> bool:
    """Whether a command line starts a Pi, a Jupyter kernel or server, or the main command."""
    words = [str(word) for word in argv]
    return (
        "--mode" in words  # pi --mode rpc
        or ("-m" in words and "pi_kernel" in words and "start" in words)
        or any(
            (Path(word).name == "pi" and shutil.which(word) is not None)
            or "pi-coding-agent" in word
            or word.endswith(("ipykernel_launcher", "start.sh"))
            or word in ("pi_kernel.kernel", "jupyterlab", "jupyterhub")
            for word in words
        )
    )


def _guard_the_fast_tier() -> None:
    """Under ``--fast``, a test that starts a Pi, a kernel or the main command fails at once
    (it belongs in the ``live`` tier: use a live fixture or mark it), so the fast tier stays
    what it says.  Set for the whole session, so class-level set-ups are guarded too."""
    start = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[bytes], args: Any, *rest: Any, **kw: Any) -> None:
        argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
        if starts_pi_or_kernel([os.fsdecode(word) for word in argv]):
            pytest.fail(f"a fast-tier test started a Pi or a kernel: {argv}; mark it live")
        start(self, args, *rest, **kw)

    subprocess.Popen.__init__ = guarded  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("fast"):
        _guard_the_fast_tier()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A ``contract`` test that uses ``pi_install`` runs once per Pi, named by its version."""
    if "pi_install" in metafunc.fixturenames and metafunc.definition.get_closest_marker("contract"):
        pis = (CURRENT_PI, *COMPAT_PIS)
        metafunc.parametrize(
            "pi_install", pis, indirect=True, ids=[f"pi-{pi.version}" for pi in pis]
        )


@pytest.fixture(scope="session")
def _located() -> dict[Path, PiInstall]:
    return {}


@pytest.fixture
def pi_install(request: pytest.FixtureRequest, _located: dict[Path, PiInstall]) -> PiInstall:
    """The Pi under test: the project's own, or (``contract`` tests) each Pi in turn."""
    pinned: PinnedPi = getattr(request, "param", CURRENT_PI)
    if pinned.folder not in _located:
        _located[pinned.folder] = pinned.locate()
    return _located[pinned.folder]


@pytest.fixture(scope="session")
def legacy_install() -> PiInstall:
    return LEGACY_PI.locate()


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def pi_env(tmp_path: Path, llm: ScriptedLLM, pi_install: PiInstall) -> PiEnv:
    """An environment whose Pi knows exactly the scripted provider's three models.

    A compatibility Pi is named in ``PI_KERNEL_PI_PATH``, so that sessions, magics and kernels
    started with this environment run it; the project's own Pi is found as users find it.
    """
    agent_dir = write_agent_dir(tmp_path / "agent", llm.base_url)
    pi_env = isolated_env(tmp_path, agent_dir)
    if pi_install.path != CURRENT_PI.executable:
        pi_env.env[ENV_PI_PATH] = str(pi_install.path)
    return pi_env


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


@pytest.fixture
def kernel(pi_env: PiEnv) -> Iterator[KernelHarness]:
    """A python3 kernel in the test's Pi environment, with ``%load_ext pi_magics`` done.
    (The Pi kernel's tests define their own ``kernel``.)"""
    from tests.kernel_harness import running_kernel  # it imports this module

    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        yield kernel


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 (held together, so never the same twice)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
