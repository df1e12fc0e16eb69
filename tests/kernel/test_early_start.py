"""A new Pi kernel starts its Pi before it imports IPython and ipykernel, and the notebook
uses that same Pi: real kernels, the real Pi."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
from jupyter_client.manager import KernelManager

from tests.support import scripted_llm as script
from tests.support.kernels import MAGICS, KernelHarness, pinned_ports, running_kernel
from tests.support.pi_env import PiEnv
from tests.support.processes import is_pi
from tests.support.scripted_llm import ScriptedLLM


def test_the_pi_started_first_is_the_one_the_notebook_uses(kernel: KernelHarness, llm: ScriptedLLM):
    first = kernel.wait_for_pi()
    assert kernel.evaluate(f"{MAGICS}.started_early") is True
    llm.enqueue(script.text("Hello."))
    run = kernel.execute("Say hello.")
    assert run.status == "ok", run.outputs
    assert [pi.pid for pi in kernel.pis()] == [first.pid]  # one Pi, the first, throughout
    assert kernel.evaluate(f"{MAGICS}.session.pi.starts") == 1


def test_a_configuration_that_asks_for_another_pi_replaces_the_one_started_first(
    pi_env: PiEnv, llm: ScriptedLLM, kernels_prefix: str, tmp_path: Path
):
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text("c.PiMagics.pi_args = ['--no-session']\n")
    env = {**pi_env.env, "IPYTHONDIR": str(tmp_path / "ipython")}
    with running_kernel(env=env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
        llm.enqueue(script.text("Hello."))
        assert kernel.execute("Say hello.").status == "ok"
        assert len(kernel.pis()) == 1  # the one started first is gone
        assert "in memory (nothing saved)" in kernel.execute("%pi status").text()


def test_a_kernel_killed_while_it_starts_leaves_no_pi(pi_env: PiEnv, kernels_prefix: str):
    manager = pinned_ports(KernelManager(kernel_name="pi"))
    manager.start_kernel(env=pi_env.env, cwd=str(pi_env.cwd))
    assert manager.provisioner is not None
    kernel = psutil.Process(manager.provisioner.process.pid)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    pis: list[psutil.Process] = []
    while not pis and time.monotonic() < deadline:
        pis = [child for child in kernel.children(recursive=True) if is_pi(child)]
        time.sleep(0.01)
    assert pis, "the kernel started no Pi"
    # SIGKILL, before it could answer, let alone clean up; then reaped.
    manager.shutdown_kernel(now=True)
    _, alive = psutil.wait_procs(pis, timeout=10)
    assert not alive, f"Pi outlived its kernel: {alive}"


def test_load_ext_starts_pi_before_the_magics_imports(pi_env: PiEnv, llm: ScriptedLLM):
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:  # python3
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        first = kernel.wait_for_pi()
        assert kernel.evaluate(f"{MAGICS}.started_early") is True
        llm.enqueue(script.text("Hello."))
        assert kernel.execute("%%pi\nSay hello.").status == "ok"
        assert [pi.pid for pi in kernel.pis()] == [first.pid]


def test_load_ext_starts_no_pi_when_the_notebook_says_not_to(pi_env: PiEnv):
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:  # python3
        assert kernel.execute("%config PiMagics.prewarm = False").status == "ok"
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        said = kernel.evaluate(f"[{MAGICS}.started_early, {MAGICS}.session.pi.starts]")
        assert said == [False, 0]
        assert not kernel.pis()
