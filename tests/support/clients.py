"""A Pi client on the scripted provider, and a prompt's events collected: the live RPC
tests' way in (the current and the legacy Pi alike)."""

from __future__ import annotations

from typing import Any

from pi_kernel.rpc import PiClient, PiInstall, open_client
from tests.support.pi_env import PiEnv

PLAIN = ("--provider", "scripted", "--model", "plain", "--no-session")
"""Pi on the scripted provider's plain model, keeping no session file."""


def client_for(install: PiInstall, pi_env: PiEnv, *args: str) -> Any:
    return open_client(install, args=args or PLAIN, cwd=str(pi_env.cwd), env=pi_env.env)


async def collect(client: PiClient, prompt: str) -> tuple[list[Any], Any]:
    events = []
    async with client.prompt(prompt) as run:
        async for event in run:
            events.append(event)
    return events, run.outcome
