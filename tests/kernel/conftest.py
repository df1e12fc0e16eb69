"""The Pi kernel's fixtures: its kernelspec installed under a temporary prefix, and a
running Pi kernel in the test's Pi environment (it replaces the python3 ``kernel``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kernels import KernelHarness, pi_kernel_cli, running_kernel
from tests.support.pi_env import PiEnv


@pytest.fixture
def kernels_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pi_env: PiEnv) -> Path:
    """The kernelspec installed under a temporary prefix that Jupyter searches."""
    prefix = tmp_path / "prefix"
    installed = pi_kernel_cli("install", "--prefix", str(prefix))
    assert installed.returncode == 0, installed.stderr
    jupyter_path = str(prefix / "share" / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", jupyter_path)
    pi_env.env["JUPYTER_PATH"] = jupyter_path
    return prefix


@pytest.fixture
def kernel(kernels_prefix: Path, pi_env: PiEnv) -> Iterator[KernelHarness]:
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
        yield kernel
