"""pi-kernel deployed under a real JupyterHub on one machine, with two users.

The hub (its proxy, a sqlite database, everything in the test's directory) runs each user's
server as a local process (``SimpleLocalProcessSpawner``) with the user's own Pi agent dir,
hence their own provider key, and the Pi kernelspec.  The test is a hub service: it makes the
users, starts their servers and runs cells in a ``pi`` kernel over the kernel websocket, through
the proxy, as a browser would.

What this spawner cannot show: every user's server, kernel and Pi run under one uid (the
test's), so one user's Pi, or a command it runs, could read the other user's agent dir, key
and files, and signal their processes.  Keys here stay apart because each server is *given*
only its own, not because anything stops a user from taking another's.  A real deployment
isolates users with one uid or one container each (SystemdSpawner, KubeSpawner,
DockerSpawner); what is proved here is what pi-kernel itself must get right in any of them:
each server's Pi uses the key it was given, the notebook never shows it, the hub's token
for the server never reaches the model provider, and no Pi outlives its server.  Bob's
server runs with ``PI_KERNEL_SANDBOX=1``, as a shared server's should: his Pi's bash looks
for the hub's token in every process's environment, and finds no other process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import scripted_llm as script
from tests.support.hub import SANDBOXED, Hub, running_hub
from tests.support.processes import assert_none_left
from tests.support.scripted_llm import ScriptedLLM

pytestmark = pytest.mark.live  # a real hub, its servers, their kernels and Pis

REDACTED = "[redacted]"
IDLE_TIMEOUT = 10
"""The culler's idle limit, in seconds.  Activity travels kernel output -> the server's
``last_activity`` -> a report to the hub every second -> the culler's check every second; on a
busy 2-core machine any hop can lag by seconds, so the limit leaves about eight seconds of
slack over the heartbeat (a 3 s limit failed one run in three)."""
CULL_WAIT = 40.0
"""Seconds for the culler to find the idle server and the hub to stop it."""
LONG_TOOL = "sleep 617"
"""A command still running when its server is stopped (an unusual number, to find it by)."""
QUIET_TOOL = f"sleep {2 * IDLE_TIMEOUT}"
"""A tool that prints nothing for two idle limits: only the heartbeat shows activity."""
HEARTBEAT = 1
"""``PiMagics.heartbeat`` for the culled user's kernel: well inside the idle limit."""


@pytest.fixture
def hub(tmp_path: Path, llm: ScriptedLLM) -> Iterator[Hub]:
    with running_hub(tmp_path, llm.base_url) as hub:
        yield hub


def _authorization(headers: dict[str, str]) -> str:
    return next((value for name, value in headers.items() if name.lower() == "authorization"), "")


def test_each_users_pi_uses_their_own_key_and_never_sends_the_hub_token(hub: Hub, llm: ScriptedLLM):
    users = [hub.add_user("alice"), hub.add_user("bob")]
    hub.start_servers(*users)
    shown: dict[str, str] = {}
    for user in users:  # one after the other: the scripted LLM answers in order
        kernel = hub.start_kernel(user)
        # The tool prints what a careless command would: the environment, and the user's
        # provider config with their key in it.
        command = f"env; cat {user.agent_dir / 'models.json'}"
        if user.name in SANDBOXED:
            # And what a hostile one would: every process's environment (the server's and the
            # kernel's hold the hub's token), which the sandbox leaves out of Pi's sight.
            command += "; cat /proc/[0-9]*/environ | tr '\\0' '\\n' | grep JUPYTERHUB_API"
        llm.enqueue(*script.tool_then_answer(command, f"That was {user.name}'s environment."))
        run = hub.execute(user, kernel, "What is in my environment?")
        assert run.status == "ok", run.shown
        assert f"That was {user.name}'s environment." in run.shown
        shown[user.name] = run.shown

    bodies = [json.dumps(body) for body in llm.requests]
    headers = llm.request_headers
    assert len(bodies) == 4, bodies  # two per user: the tool call, then the answer
    for user in users:
        others = [other for other in users if other is not user]
        mine = [i for i, sent in enumerate(headers) if _authorization(sent) == f"Bearer {user.key}"]
        assert len(mine) == 2, f"{user.name}'s key authorized requests {mine}"
        # The tool's output (in the JSON body, its newlines escaped) came back to the model
        # from this user's own server.
        assert f"HOME={user.home}\\n" in bodies[mine[-1]]
        for i in mine:
            sent = bodies[i] + json.dumps(headers[i])
            assert not [other.name for other in others if other.key in sent]

        # The notebook showed what the tool printed, with the key taken out.
        assert f"HOME={user.home}\n" in shown[user.name]
        assert f'"apiKey": "{REDACTED}"' in shown[user.name]
        assert not [owner.name for owner in users if owner.key in shown[user.name]]

    # Every kernel of a hub's server inherits the hub's token for that server
    # (JUPYTERHUB_API_TOKEN); Pi's `env` must not hand it to the model provider.
    for user in users:
        token = hub.hub_token_of(user)
        assert not [name for name, text in shown.items() if token in text]
        leaked = [i for i, body in enumerate(bodies) if token in body + json.dumps(headers[i])]
        assert not leaked, f"{user.name}'s hub token was sent to the LLM in requests {leaked}"


@pytest.mark.timing
def test_a_stopped_server_and_a_culled_one_leave_no_pi_and_a_quiet_turn_is_not_culled(
    hub: Hub, llm: ScriptedLLM
):
    stopped, idle = hub.add_user("alice"), hub.add_user("bob")
    hub.start_servers(stopped, idle)
    kernel = hub.start_kernel(stopped)
    idle_kernel = hub.start_kernel(idle)
    hub.wait_for_pi(idle)  # the kernel starts Pi before its first cell

    # Alice's server is stopped while her Pi runs a tool: Pi and the tool must go with it.
    llm.enqueue(script.tool_calls(("bash", {"command": LONG_TOOL})))
    with hub.channels(stopped, kernel) as channels:
        channels.send("Wait for a while.")
        hub.wait_for_command(stopped, LONG_TOOL)
        hub.stop_server(stopped)
    assert_none_left(stopped.root)
    assert idle.pis(), "stopping one user's server stopped the other user's Pi"

    # Bob's long quiet tool run outlives the culler: the heartbeat's output is activity.
    set_heartbeat = hub.execute(idle, idle_kernel, f"%config PiMagics.heartbeat = {HEARTBEAT}")
    assert set_heartbeat.status == "ok", set_heartbeat.shown
    llm.enqueue(*script.tool_then_answer(QUIET_TOOL, "Slept through it."))
    with hub.channels(idle, idle_kernel) as channels:
        sent = channels.send("Wait quietly.")
        hub.wait_for_command(idle, QUIET_TOOL)
        hub.start_culler(timeout=IDLE_TIMEOUT, every=1)
        run = channels.finish(sent)
    assert run.status == "ok", run.shown
    assert "Slept through it." in run.shown
    assert "running… 2 s" in run.shown  # the heartbeat it lived on

    # Once idle, the server is culled, and its Pi goes with it.
    hub.wait_until_stopped(idle, CULL_WAIT)
    assert_none_left(idle.root)
