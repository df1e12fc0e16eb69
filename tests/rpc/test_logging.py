"""``PI_KERNEL_LOG``: the lifecycle a bug report needs, and never what the user typed."""

from __future__ import annotations

import re
import subprocess
import sys

from pi_kernel.rpc import PiInstall
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM, text

SECRET_PROMPT = "my card number is 4111 1111 1111 1111"
SCRIPT = """
import sys, anyio
from pi_kernel.rpc import locate_pi, open_client

async def main():
    install = locate_pi(sys.argv[1])
    args = ("--provider", "scripted", "--model", "plain", "--no-session")
    async with open_client(install, args=args, cwd=sys.argv[2]) as client:
        await client.get_state()
        async with client.prompt(sys.argv[3]) as run:
            async for _ in run:
                pass

anyio.run(main)
"""


def run_logged(
    pi_install: PiInstall, pi_env: PiEnv, level: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(pi_install.path), str(pi_env.cwd), SECRET_PROMPT],
        env={**pi_env.env, "PI_KERNEL_LOG": level},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_debug_logging_shows_pi_s_lifecycle_commands_and_runs_but_not_the_prompt(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(text("Noted."))
    result = run_logged(pi_install, pi_env, "debug")
    assert result.returncode == 0, result.stderr
    log = result.stderr
    assert "pi_kernel.rpc.transport INFO: started Pi (pid " in log
    assert re.search(r"pi_kernel\.rpc\.client DEBUG: get_state pk-\d+: answered in \d+ ms", log)
    sent = re.search(r"pi_kernel\.rpc\.run DEBUG: run (pk-\d+): prompt sent \(37 characters\)", log)
    assert sent, log
    assert f"pi_kernel.rpc.run DEBUG: run {sent[1]} settled: completed" in log
    assert "pi_kernel.rpc.transport INFO: stopped Pi (pid " in log
    assert "4111" not in log


def test_logging_is_silent_unless_asked_and_a_wrong_level_is_one_line(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(text("Noted."), text("Noted."))
    assert run_logged(pi_install, pi_env, "").stderr == ""
    wrong = run_logged(pi_install, pi_env, "loud")
    assert wrong.returncode == 0
    assert (
        wrong.stderr
        == "pi-kernel: PI_KERNEL_LOG='loud' is not a logging level; use debug or info.\n"
    )
