"""A kernel under JupyterHub holds the hub's token; Pi must not pass it to the model.

A real python3 kernel gets the variables a hub gives every single-user server, and a real Pi
is asked (by the scripted LLM) to print its environment with bash and to read the variables
from the kernel with its Python tool.  The hub test (``tests/hub``) does the same under a
real JupyterHub.
"""

from __future__ import annotations

import json

from pi_kernel import variables
from pi_kernel.kernel_tools.catalog import PYTHON
from tests.support import scripted_llm as script
from tests.support.kernels import running_kernel
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM, call, tool_result

HIDDEN = {
    "JUPYTERHUB_API_TOKEN": "hub-token-5f0c2a9e77d1",
    "JPY_API_TOKEN": "hub-token-5f0c2a9e77d1",
    "JUPYTER_TOKEN": "server-token-81b3e4c0",
    "TEAM_DB_PASSWORD": "db-password-2c9d41",  # hidden by the setting below
}
SHOWN = {"TEAM_REGION": "region-eu-west-7", variables.HIDE_ENV: "TEAM_DB_*"}


def test_pi_never_sees_the_hub_token_through_bash_or_the_kernel(pi_env: PiEnv, llm: ScriptedLLM):
    env = {**pi_env.env, **HIDDEN, **SHOWN}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        llm.enqueue(*script.tool_then_answer(command="env", answer="That is my environment."))
        assert kernel.execute("%%pi\nPrint your environment.").status == "ok"
        printed = tool_result(llm.requests[1])
        assert "TEAM_REGION=region-eu-west-7" in printed  # the environment was printed
        assert "PI_CODING_AGENT_DIR=" in printed
        for name in HIDDEN:
            assert f"{name}=" not in printed

        # Pi's code runs in the kernel, which has them: what goes back to Pi has them replaced.
        code = (
            "import os\nprint(os.environ['JUPYTERHUB_API_TOKEN'], os.environ['TEAM_DB_PASSWORD'])"
        )
        llm.enqueue(*call(PYTHON, "Read them.", code=code))
        assert kernel.execute("%%pi\nRead the token from the kernel.").status == "ok"
        assert tool_result(llm.requests[3]).count("[redacted]") == 2

    everything_sent = json.dumps(llm.requests)
    for value in HIDDEN.values():
        assert value not in everything_sent
