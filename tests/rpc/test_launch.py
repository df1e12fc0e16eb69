"""Finding Pi: the configured path is honoured, and a broken one is a clear error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pi_kernel import variables
from pi_kernel.rpc import PiExited, PiInstall, PiNotFound, locate_pi, open_client
from tests.support.pi_env import PiEnv
from tests.support.pis import REPO


def test_the_project_install_runs_with_its_own_node(pi_install: PiInstall):
    node, script = pi_install.argv
    assert Path(node) == REPO / "node_modules" / ".bin" / "node"
    assert script.endswith("cli.js")
    assert pi_install.package == "@earendil-works/pi-coding-agent"


def test_an_explicit_setting_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv(variables.PI_PATH, str(tmp_path / "from-env"))
    install = locate_pi(REPO / "node_modules" / ".bin" / "pi")
    assert install.source == "setting"


def test_the_environment_variable_is_honoured_and_never_bypassed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    missing = tmp_path / "bin" / "pi"
    monkeypatch.setenv(variables.PI_PATH, str(missing))
    with pytest.raises(PiNotFound) as caught:
        locate_pi()
    assert str(missing) in str(caught.value)
    assert "no such file" in str(caught.value)


def test_a_directory_is_not_pi(tmp_path: Path):
    with pytest.raises(PiNotFound, match="directory"):
        locate_pi(tmp_path)


def test_a_file_that_is_not_executable_is_refused(tmp_path: Path):
    binary = tmp_path / "pi"
    binary.write_bytes(b"\x7fELF not really")
    binary.chmod(0o644)
    with pytest.raises(PiNotFound, match="not executable") as caught:
        locate_pi(binary)
    assert str(binary) in str(caught.value)


def test_without_any_pi_the_error_says_what_was_looked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.delenv(variables.PI_PATH, raising=False)
    monkeypatch.setattr("pi_kernel.rpc.launch.CHECKOUT", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PiNotFound) as caught:
        locate_pi()
    assert "no checkout (a wheel install), and no `pi` on PATH" in str(caught.value)
    assert "python -m pi_kernel install --pi" in (caught.value.hint or "")


def test_a_path_recorded_by_the_kernelspec_says_so(monkeypatch: pytest.MonkeyPatch):
    pinned = str(REPO / "node_modules" / ".bin" / "pi")
    monkeypatch.setenv(variables.PI_PATH, pinned)
    monkeypatch.setenv(variables.PI_RECORDED, pinned)
    install = locate_pi()
    assert install.source == "kernelspec"
    assert "recorded in the kernelspec" in install.describe()
    # Set by hand over a recorded one (the user's own environment): that one is reported.
    monkeypatch.setenv(variables.PI_RECORDED, "/opt/elsewhere/pi")
    assert locate_pi().source == "environment"


def test_the_checkout_is_found_only_from_a_checkout():
    from pi_kernel.rpc.launch import CHECKOUT

    assert CHECKOUT == REPO  # the suite runs from an editable install


@pytest.mark.anyio
async def test_a_pi_that_exits_at_start_is_one_clear_error(tmp_path: Path, pi_env: PiEnv):
    broken = tmp_path / "pi"
    broken.write_text("#!/bin/sh\necho 'pi: config is corrupt' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(PiExited) as caught:
        async with open_client(locate_pi(broken), env=pi_env.env, cwd=str(pi_env.cwd)):
            pass
    message = str(caught.value)
    assert str(broken) in message
    assert "code 3" in message
    assert "config is corrupt" in message


@pytest.mark.anyio
async def test_pi_on_an_old_node_says_it_needs_node_22(pi_install: PiInstall, pi_env: PiEnv):
    old_node = shutil.which("node", path="/usr/bin:/usr/local/bin")
    if old_node is None or os.path.realpath(old_node) == os.path.realpath(pi_install.argv[0]):
        pytest.fail("this machine should have its own Node 20 at /usr/bin/node")
    on_old_node = PiInstall(
        pi_install.path, "setting", (old_node, pi_install.argv[1]), "x", pi_install.version
    )
    with pytest.raises(PiExited, match="needs Node >= 22") as caught:
        async with open_client(on_old_node, env=pi_env.env, cwd=str(pi_env.cwd)):
            pass
    assert str(pi_install.path) in str(caught.value)
    assert "npm ci" in (caught.value.hint or "")


@pytest.mark.anyio
async def test_a_relative_path_means_from_here_even_when_pi_runs_elsewhere(
    monkeypatch: pytest.MonkeyPatch, pi_env: PiEnv
):
    monkeypatch.chdir(REPO)
    install = locate_pi("node_modules/.bin/pi")
    assert install.path == REPO / "node_modules" / ".bin" / "pi"
    async with open_client(install, args=["--no-session"], cwd=str(pi_env.cwd), env=pi_env.env):
        pass  # it started: its node and script were found from the repository, not pi's cwd
