"""``python -m pi_kernel doctor``: the real Pi, started the way a notebook starts it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pi_kernel.__main__ import main
from pi_kernel.launcher import start
from pi_kernel.rpc import PiInstall
from tests.support.pi_env import PiEnv, isolated_env

DOCTOR_TIMEOUT = 60


def doctor(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pi_kernel", "doctor", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=DOCTOR_TIMEOUT,
        check=False,
    )


def test_doctor_names_the_pi_and_lists_its_models(pi_install: PiInstall, pi_env: PiEnv):
    result = doctor(pi_env.env, pi_env.cwd, "--pi", str(pi_install.path))
    assert result.returncode == 0, result.stderr
    assert f"{pi_install.package} {pi_install.version}" in result.stdout
    assert "scripted/deep" in result.stdout
    assert "scripted/plain" in result.stdout
    assert "scripted/reasoner" in result.stdout


def test_doctor_without_credentials_says_how_to_get_models(pi_install: PiInstall, tmp_path: Path):
    empty = isolated_env(tmp_path, tmp_path / "empty-agent")
    result = doctor(empty.env, empty.cwd, "--pi", str(pi_install.path))
    assert result.returncode == 1
    assert "no usable models" in result.stdout
    assert "/login" in result.stdout


def test_doctor_with_a_missing_pi_says_which_path_failed(pi_env: PiEnv, tmp_path: Path):
    missing = tmp_path / "no" / "pi"
    result = doctor(pi_env.env, pi_env.cwd, "--pi", str(missing))
    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_start_without_a_checkout_asks_for_a_notebook(
    pi_install: PiInstall, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(start, "DEFAULT_NOTEBOOK", None)  # a wheel install carries no tour
    assert main(["start", "--pi", str(pi_install.path), "--headless"]) == 2
    assert "The tour notebook comes with the pi-kernel checkout" in capsys.readouterr().err
