"""An installed wheel, as an image or a hub installs it: no checkout, Pi recorded in the
kernelspec by ``python -m pi_kernel install --pi``.

The wheel is built from this checkout and installed into a fresh virtual environment under the
test's temporary directory.  Its dependencies are the locked ones, borrowed from ``.venv``
through a path line (no download); ``pi_kernel`` and ``pi_magics`` themselves come from the
wheel, which the first test checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from pi_kernel import variables
from tests.support.kernels import running_kernel
from tests.support.pi_env import PiEnv
from tests.support.pis import CURRENT_PI, REPO
from tests.support.scripted_llm import ScriptedLLM, text

BUILD_TIMEOUT = 120
PIP = (sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment outside the checkout holding the built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(REPO)],
        check=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT,
    )
    (wheel,) = (root / "dist").glob("pi_kernel-*.whl")
    env_dir = root / "env"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # A path line, not a site directory: .venv's own .pth files (the editable install's
    # pointer to src/) are not read, so only the dependencies come from there.
    Path(site, "locked_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT,
    )
    return env_dir


def _in(env_dir: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env_dir / "bin" / "python"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=BUILD_TIMEOUT,
        check=False,
    )


def _without_pi(pi_env: PiEnv, env_dir: Path) -> dict[str, str]:
    """The test's environment with no Pi to be found but a recorded one: no variable, and a
    PATH without ``pi`` (the machine's own tools only)."""
    env = {key: value for key, value in pi_env.env.items() if key != variables.PI_PATH}
    env["PATH"] = os.pathsep.join((str(env_dir / "bin"), "/usr/bin", "/bin"))
    env["JUPYTER_PATH"] = str(env_dir / "share" / "jupyter")
    return env


def test_the_wheel_runs_without_a_checkout(installed: Path, pi_env: PiEnv):
    env = _without_pi(pi_env, installed)
    probe = "import pi_kernel, pi_magics; from pi_kernel.rpc.launch import CHECKOUT\n"
    probe += "print(pi_kernel.__file__); print(pi_magics.__file__); print(CHECKOUT)"
    result = _in(installed, "-c", probe, env=env)
    assert result.returncode == 0, result.stderr
    kernel_file, magics_file, checkout = result.stdout.split()
    assert Path(kernel_file).is_relative_to(installed)
    assert Path(magics_file).is_relative_to(installed)
    assert checkout == "None"
    # Nothing records a Pi yet and none is on PATH: the one clear line, no traceback.
    doctor = _in(installed, "-m", "pi_kernel", "doctor", env=env)
    assert doctor.returncode == 2
    assert "no checkout (a wheel install), and no `pi` on PATH" in doctor.stderr
    assert "Traceback" not in doctor.stderr

    # Pi on PATH (a symlink, as npm -g makes one), or named by the variable: both work.
    on_path = installed.parent / "bin"
    on_path.mkdir(exist_ok=True)
    (on_path / "pi").unlink(missing_ok=True)
    (on_path / "pi").symlink_to(CURRENT_PI.executable)
    found = _in(
        installed, "-m", "pi_kernel", "doctor", env={**env, "PATH": f"{on_path}:{env['PATH']}"}
    )
    assert found.returncode == 0, found.stderr
    assert f"at {on_path / 'pi'} (from `pi` on PATH" in found.stdout
    named = {**env, variables.PI_PATH: str(CURRENT_PI.executable)}
    found = _in(installed, "-m", "pi_kernel", "doctor", env=named)
    assert found.returncode == 0, found.stderr
    assert f"(from {variables.PI_PATH} in the environment)" in found.stdout


def test_install_records_the_pi_and_the_kernel_runs_it(
    installed: Path, pi_env: PiEnv, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
):
    env = _without_pi(pi_env, installed)
    pinned = CURRENT_PI.executable
    result = _in(
        installed, "-m", "pi_kernel", "install", "--sys-prefix", "--pi", str(pinned), env=env
    )
    assert result.returncode == 0, result.stderr
    spec_dir = installed / "share" / "jupyter" / "kernels" / "pi"
    assert f"Installed kernelspec pi in {spec_dir}" in result.stdout
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["argv"][0] == str(installed / "bin" / "python")
    assert spec["env"][variables.PI_PATH] == str(pinned)

    # A broken path is refused in one line, and the recorded spec stays as it was.
    missing = installed / "no" / "pi"
    refused = _in(
        installed, "-m", "pi_kernel", "install", "--sys-prefix", "--pi", str(missing), env=env
    )
    assert refused.returncode == 2
    assert str(missing) in refused.stderr
    assert "Traceback" not in refused.stderr
    assert json.loads((spec_dir / "kernel.json").read_text()) == spec

    doctor = _in(installed, "-m", "pi_kernel", "doctor", env=env)
    assert f"Kernelspec 'pi' at {spec_dir}: runs {CURRENT_PI.package}" in doctor.stdout

    monkeypatch.setenv("JUPYTER_PATH", env["JUPYTER_PATH"])
    with running_kernel(env=env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
        llm.enqueue(text("Answered by the recorded Pi."))
        answer = kernel.execute("Say something.")
        assert answer.status == "ok", answer.text()
        assert "Answered by the recorded Pi." in answer.text()
        status = kernel.execute("%pi status")
        assert f"at {pinned} (from {variables.PI_PATH} recorded in the kernelspec" in status.text()
