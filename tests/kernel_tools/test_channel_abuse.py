"""The kernel tools' channel under abuse, through real kernels and the real Pi: a flood of
idle connections, a temporary folder too long for a socket, a runtime folder another user
took first, and the folder a killed kernel left behind."""

from __future__ import annotations

import os
import resource
import signal
import socket
from pathlib import Path

import psutil
import pytest

from pi_kernel import variables
from pi_kernel.kernel_tools.catalog import PYTHON
from tests.support.kernels import KernelHarness, running_kernel
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM, call, tool_result

NOBODY = 65534
FLOOD = 1_000


def _tool_works(kernel: KernelHarness, llm: ScriptedLLM, number: int) -> None:
    """A cell whose Pi runs Python in the kernel, through the channel, and answers."""
    llm.enqueue(*call(PYTHON, "Computed.", code=f"print({number} * 2)"))
    run = kernel.execute("%%pi\nCompute.")
    assert run.status == "ok", run.error_text
    assert str(number * 2) in tool_result(llm.requests[-1])


def _socket_of(kernel: KernelHarness) -> str:
    return str(kernel.wait_for_pi().environ()[variables.TOOLS_SOCKET])


def test_a_flood_of_idle_connections_never_breaks_the_notebooks_pi(pi_env: PiEnv, llm: ScriptedLLM):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * FLOOD)), hard))
    flood: list[socket.socket] = []
    try:
        with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
            assert kernel.execute("%load_ext pi_magics").status == "ok"
            path = _socket_of(kernel)
            for _ in range(FLOOD):
                connection = socket.socket(socket.AF_UNIX)
                connection.connect(path)
                flood.append(connection)
            _tool_works(kernel, llm, 21)  # during the flood
            kernel_fds = psutil.Process(kernel.pid).num_fds()
            for connection in flood:
                connection.close()
            _tool_works(kernel, llm, 34)  # and after it
    finally:
        for connection in flood:
            connection.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert kernel_fds < 200  # the kernel held a few of the thousand, not all


def test_a_temporary_folder_too_long_for_a_socket(pi_env: PiEnv, llm: ScriptedLLM, tmp_path: Path):
    long = tmp_path / ("t" * 60) / ("m" * 60)
    long.mkdir(parents=True)
    env = {**pi_env.env, variables.TMPDIR: str(long), variables.XDG_RUNTIME_DIR: str(long)}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        _tool_works(kernel, llm, 5)
        assert len(os.fsencode(_socket_of(kernel))) <= 107


@pytest.mark.skipif(os.getuid() != 0, reason="acting as another user needs root")
def test_a_runtime_folder_another_user_took_first(pi_env: PiEnv, llm: ScriptedLLM, tmp_path: Path):
    shared = tmp_path / "shared-tmp"
    shared.mkdir(mode=0o1777)
    squatted = shared / f"pi-kernel-{os.getuid()}"
    squatted.mkdir(mode=0o777)
    os.chown(squatted, NOBODY, NOBODY)
    env = {k: v for k, v in pi_env.env.items() if k != variables.XDG_RUNTIME_DIR}
    env[variables.TMPDIR] = str(shared)
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        _tool_works(kernel, llm, 8)
        socket_path = Path(_socket_of(kernel))
    assert squatted not in socket_path.parents
    assert list(squatted.iterdir()) == []  # nothing of ours went into the other user's folder


def test_the_folder_of_a_kernel_killed_outright_is_removed_by_the_next(
    pi_env: PiEnv, llm: ScriptedLLM
):
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as killed:
        assert killed.execute("%load_ext pi_magics").status == "ok"
        pi = killed.wait_for_pi()
        left = Path(_socket_of(killed)).parent
        os.kill(killed.pid, signal.SIGKILL)
        pi.wait(timeout=30)  # Pi goes with its kernel
    assert left.exists()
    os.utime(left, (0, 0))  # older than a folder still being made
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        _tool_works(kernel, llm, 13)
    assert not left.exists()
