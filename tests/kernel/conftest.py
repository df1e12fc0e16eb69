"""The Pi kernel's fixtures: its kernelspec installed once for the session under a temporary
prefix, and a running Pi kernel in the test's Pi environment (it replaces the python3
``kernel``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kernels import KernelHarness, install_pi_kernelspec, running_kernel
from tests.support.pi_env import PiEnv


@pytest.fixture(scope="session")
def _pi_kernelspec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m pi_kernel install --prefix`` once: no test changes what it writes."""
    prefix = tmp_path_factory.mktemp("kernelspec") / "prefix"
    install_pi_kernelspec(prefix)
    return prefix


@pytest.fixture
def kernels_prefix(_pi_kernelspec: Path, monkeypatch: pytest.MonkeyPatch, pi_env: PiEnv) -> Path:
    """The prefix the Pi kernelspec is installed under, on JUPYTER_PATH for this test."""
    jupyter_path = str(_pi_kernelspec / "share" / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", jupyter_path)
    pi_env.env["JUPYTER_PATH"] = jupyter_path
    return _pi_kernelspec


@pytest.fixture
def kernel(kernels_prefix: Path, pi_env: PiEnv) -> Iterator[KernelHarness]:
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
        yield kernel
