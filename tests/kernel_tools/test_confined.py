"""Pi confined: the routes Pi's bash took out of its policy, each tried with the sandbox off
(where it works: the test can fail) and on (where it must not).

Real kernels, the real Pi inside the real bubblewrap; the scripted LLM asks for the bash
commands an injected prompt would.  What reaches the model is what the LLM server received.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from pi_kernel import variables
from pi_kernel.kernel_tools.catalog import PYTHON
from tests.support import scripted_llm as script
from tests.support.kernels import KernelHarness, running_kernel
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM, call, tool_result

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

HUB_TOKEN = "hub-token-7d2e9b41c0a8"
SANDBOX = pytest.mark.parametrize("sandbox", ["off", "on"])


def _env(pi_env: PiEnv, sandbox: str, **more: str) -> dict[str, str]:
    return {**pi_env.env, variables.SANDBOX: "1" if sandbox == "on" else "0", **more}


def _bash(kernel: KernelHarness, llm: ScriptedLLM, command: str) -> str:
    """What Pi's bash printed for ``command``, as the model received it."""
    llm.enqueue(*script.tool_then_answer(command=command, answer="Done."))
    run = kernel.execute("%%pi\nRun it.")
    assert run.status == "ok", run.text()
    return tool_result(llm.requests[-1])


@SANDBOX
def test_the_hub_token_in_another_process_environment(
    pi_env: PiEnv, llm: ScriptedLLM, sandbox: str
):
    env = _env(pi_env, sandbox, JUPYTERHUB_API_TOKEN=HUB_TOKEN)
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        command = (
            "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep JUPYTERHUB_ | sort -u; "
            "ls /proc | grep -c '^[0-9]'"
        )
        printed = _bash(kernel, llm, command)
    if sandbox == "off":
        assert f"JUPYTERHUB_API_TOKEN={HUB_TOKEN}" in printed  # the kernel's environment
    else:
        assert HUB_TOKEN not in printed
        assert int(printed.split()[-1]) <= 6  # bwrap's helper, Pi, its shell: nothing else
    assert (HUB_TOKEN in json.dumps(llm.requests)) is (sandbox == "off")


@SANDBOX
def test_the_connection_file_route_under_the_off_policy(
    pi_env: PiEnv, llm: ScriptedLLM, sandbox: str, tmp_path: Path
):
    marker = tmp_path / "ran-in-the-kernel"
    with running_kernel(env=_env(pi_env, sandbox), cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        assert kernel.execute("%config PiMagics.kernel_tools = 'off'").status == "ok"
        connection_file = kernel.manager.connection_file
        attack = (
            "from jupyter_client import BlockingKernelClient\n"
            f"c = BlockingKernelClient(connection_file={connection_file!r})\n"
            "c.load_connection_file(); c.start_channels()\n"
            f"c.execute({f'open({str(marker)!r}, {chr(39)}w{chr(39)}).close()'!r})\n"
            "import time; time.sleep(1); print('queued')\n"
        )
        printed = _bash(kernel, llm, f"{sys.executable} -c {shlex.quote(attack)} 2>&1")
        assert kernel.execute("1 + 1").status == "ok"  # what was queued has run by now
    if sandbox == "off":
        assert "queued" in printed
        assert marker.exists()
    else:
        assert "queued" not in printed
        assert not marker.exists()


@SANDBOX
def test_another_notebooks_tool_socket(pi_env: PiEnv, llm: ScriptedLLM, sandbox: str):
    env = _env(pi_env, sandbox)
    with (
        running_kernel(env=env, cwd=pi_env.cwd) as notebook_a,
        running_kernel(env=env, cwd=pi_env.cwd) as notebook_b,
    ):
        for kernel in (notebook_a, notebook_b):
            assert kernel.execute("%load_ext pi_magics").status == "ok"
        pi_b = notebook_b.wait_for_pi()
        socket_b = pi_b.environ()[variables.TOOLS_SOCKET]
        probe = (
            "import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            f"try:\n    s.connect({socket_b!r})\n"
            "except OSError as e:\n    print('unreachable:', e); sys.exit()\n"
            's.sendall(b\'{"secret": "guess", "op": "offer"}\\n\')\n'
            "print('reached:', s.makefile().readline())\n"
        )
        printed = _bash(notebook_a, llm, f"{sys.executable} -c {shlex.quote(probe)}")
    if sandbox == "off":
        # Reachable, and refused: the secret is nowhere this Pi can read (the next test).
        assert "reached:" in printed
        assert "wrong secret" in printed
    else:
        assert "unreachable:" in printed
        assert "No such file" in printed


@SANDBOX
def test_the_tool_secret_is_in_no_environment_pi_can_read(
    pi_env: PiEnv, llm: ScriptedLLM, sandbox: str
):
    with running_kernel(env=_env(pi_env, sandbox), cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        command = (
            "tr '\\0' '\\n' < /proc/$PPID/environ | grep PI_KERNEL_TOOLS; "
            "cat \"$(tr '\\0' '\\n' < /proc/$PPID/environ "
            "| sed -n 's/^PI_KERNEL_TOOLS_SECRET_FILE=//p')\" 2>&1 | sed 's/^/file: /'"
        )
        printed = _bash(kernel, llm, command)
        # And the extension did read it: a kernel tool call goes through.
        llm.enqueue(*call(PYTHON, "Done.", code="print(6 * 7)"))
        assert kernel.execute("%%pi\nCompute.").status == "ok"
        assert "42" in tool_result(llm.requests[-1])
    assert f"{variables.TOOLS_SOCKET}=" in printed  # Pi's first environment was read
    assert "PI_KERNEL_TOOLS_SECRET=" not in printed
    assert "file: cat:" in printed  # read and removed
    assert "No such file" in printed


def test_a_sandbox_without_bubblewrap_starts_no_pi(pi_env: PiEnv, llm: ScriptedLLM):
    env = _env(pi_env, "on", PATH=os.path.dirname(sys.executable))  # no bwrap on this PATH
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        run = kernel.execute("%%pi\nHello?")
        assert run.status == "error"
        assert kernel.pis() == []
    assert "bubblewrap (`bwrap`) is not installed: Pi was not started." in run.error_text
    assert "apt-get install bubblewrap" in run.error_text
    assert "Traceback" not in run.error_text
    assert llm.requests == []


@pytest.mark.skipif(os.getuid() != 0, reason="taking the namespaces away needs root")
def test_a_sandbox_that_cannot_be_made_starts_no_pi(
    pi_env: PiEnv, llm: ScriptedLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A kernel without the privilege to make namespaces, as in many containers: itself run
    # by bubblewrap with every capability dropped.
    bwrap = shutil.which("bwrap")
    assert bwrap is not None
    spec = tmp_path / "jupyter" / "kernels" / "capless"
    spec.mkdir(parents=True)
    argv = [bwrap, "--dev-bind", "/", "/", "--cap-drop", "ALL"]
    argv += [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel_json = {"argv": argv, "display_name": "capless", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel_json))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    env = _env(pi_env, "on")
    with running_kernel(env=env, cwd=pi_env.cwd, kernel_name="capless") as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        run = kernel.execute("%%pi\nHello?")
        assert run.status == "error"
        assert kernel.pis() == []
        status = kernel.execute("%pi status").text()
    assert "bubblewrap cannot make it here (" in run.error_text
    assert "): Pi was not started." in run.error_text
    assert "user namespaces" in run.error_text
    assert "Traceback" not in run.error_text
    assert "Error:     The sandbox is on, and bubblewrap cannot make it here" in status
    assert llm.requests == []
