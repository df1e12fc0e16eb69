"""Fixtures shared by the whole suite: the real Pi, an isolated agent dir, the scripted LLM.

Pi always runs for real: the project's pinned Pi (``npm ci`` in the checkout) and, for the
tests marked ``contract``, each of the compatibility Pis under ``tests/`` too.  The only
double is the LLM server on 127.0.0.1.  Pi never sees the user's home: HOME and
PI_CODING_AGENT_DIR point into the test's temporary directory.  After every test, no Pi
started by it may still run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pi_kernel import variables
from pi_kernel.rpc import PiInstall
from tests.support.kernels import KernelHarness, install_pi_kernelspec, running_kernel
from tests.support.pi_env import PiEnv, pi_env_for
from tests.support.pis import COMPAT_PIS, CURRENT_PI, LEGACY_PI, PinnedPi
from tests.support.processes import assert_none_left
from tests.support.scripted_llm import ScriptedLLM
from tests.support.tiers import guard_the_fast_tier

LIVE_FIXTURES = frozenset(
    {
        "pi_install",
        "legacy_install",
        "kernel",
        "pi_kernel",
        "shared_kernel",
        "shared_pi_kernel",
        "kernels_prefix",
        "lab",
        "page",
        "start_kernel",
    }
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


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("fast"):
        guard_the_fast_tier()


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
    pi_env = pi_env_for(tmp_path, llm.base_url)
    if pi_install.path != CURRENT_PI.executable:
        pi_env.env[variables.PI_PATH] = str(pi_install.path)
    return pi_env


@pytest.fixture(autouse=True)
def no_pi_left_behind(tmp_path: Path) -> Iterator[None]:
    """Fail the test if a process it started (Pi, a tool, a kernel) outlives it."""
    yield
    assert_none_left(tmp_path)


@pytest.fixture(scope="module")
def shared_llm() -> Iterator[ScriptedLLM]:
    """The scripted LLM of a module's ``shared_kernel``."""
    with ScriptedLLM() as server:
        yield server


@pytest.fixture(scope="module")
def shared_kernel(
    tmp_path_factory: pytest.TempPathFactory, shared_llm: ScriptedLLM
) -> Iterator[KernelHarness]:
    """One python3 kernel with the magics for a module's tests where a fresh kernel is not the
    subject: bad input answered in one line, with nothing asked of the model.  A test using
    it must leave nothing behind that the next one could see (no turn, no setting)."""
    root = tmp_path_factory.mktemp("shared")
    pi_env = pi_env_for(root, shared_llm.base_url)
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        yield kernel
    assert_none_left(root)


@pytest.fixture(scope="session")
def _pi_kernelspec(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``python -m pi_kernel install --prefix`` once (no test changes what it writes): the
    folder to put on JUPYTER_PATH."""
    return install_pi_kernelspec(tmp_path_factory.mktemp("kernelspec") / "prefix")


@pytest.fixture(scope="module")
def shared_pi_kernel(
    tmp_path_factory: pytest.TempPathFactory, shared_llm: ScriptedLLM, _pi_kernelspec: str
) -> Iterator[KernelHarness]:
    """One Pi kernel for a module's tests where a fresh one is not the subject (as
    ``shared_kernel``)."""
    root = tmp_path_factory.mktemp("shared-pi")
    pi_env = pi_env_for(root, shared_llm.base_url)
    pi_env.env["JUPYTER_PATH"] = _pi_kernelspec
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", _pi_kernelspec)
        with running_kernel(env=pi_env.env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
            yield kernel
    assert_none_left(root)


@pytest.fixture
def kernels_prefix(_pi_kernelspec: str, monkeypatch: pytest.MonkeyPatch, pi_env: PiEnv) -> str:
    """The Pi kernelspec on JUPYTER_PATH for this test (here and in its Pi environment)."""
    monkeypatch.setenv("JUPYTER_PATH", _pi_kernelspec)
    pi_env.env["JUPYTER_PATH"] = _pi_kernelspec
    return _pi_kernelspec


@pytest.fixture
def pi_kernel(kernels_prefix: str, pi_env: PiEnv) -> Iterator[KernelHarness]:
    """A Pi kernel (its cells are prompts) in the test's Pi environment."""
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
        yield kernel


@pytest.fixture
def kernel(pi_env: PiEnv) -> Iterator[KernelHarness]:
    """A python3 kernel in the test's Pi environment, with ``%load_ext pi_magics`` done.
    (The Pi kernel's tests, in tests/kernel/, make ``kernel`` the Pi kernel.)"""
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        yield kernel
