"""Conversations between ``PiClient`` and a real Pi, recorded once and replayed without Node.

A conversation file (``tests/data/conversations/PI-VERSION/SCENARIO.jsonl``) starts with a
header line naming the Pi and how the run ended, then holds, in the order they happened,
every command the client sent (``{"sent": ...}``) and every record Pi wrote
(``{"read": ...}``, as the client decoded it).  ``ReplayedPi`` plays Pi's side back over
``connect``: it hands the client Pi's records in their recorded order, and stops at each
recorded command until the client sends exactly that command (same id, same fields).  So a
replay checks both how ``Run`` settles and aborts on what a real Pi wrote, and that the client
still asks Pi the same things at the same points.

Record again (after a change to what the client sends, or for a new Pi) with
``.venv/bin/python -m tests.support.conversations``: it runs each scenario against the three
pinned Pis and the scripted LLM.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from pi_kernel.rpc.client import PiClient, connect
from pi_kernel.rpc.errors import PiProtocolError
from pi_kernel.rpc.launch import PiInstall
from pi_kernel.rpc.protocol import MessageUpdate, Record, parse_record
from pi_kernel.rpc.run import RunOutcome
from pi_kernel.rpc.transport import Connection, StderrTail, open_transport
from tests.support import scripted_llm as script
from tests.support.pis import DATA
from tests.support.scripted_llm import Reply, ScriptedLLM

CONVERSATIONS = DATA / "conversations"
ARGS = ("--provider", "scripted", "--model", "plain", "--no-session")
REPLAY_TIMEOUT = 10.0
"""Seconds a replayed scenario may take (it takes milliseconds; more means it is stuck)."""
ABORT_AFTER_UPDATES = 3
"""The ``abort`` scenario leaves its run after this many ``message_update`` events."""

Item = Record | PiProtocolError


@dataclass(frozen=True)
class Scenario:
    """What the scripted LLM answers, and what the client does with it."""

    replies: Callable[[], list[Reply]]
    drive: Callable[[PiClient], Awaitable[RunOutcome]]


async def _prompt(client: PiClient, message: str) -> RunOutcome:
    await client.get_state()
    async with client.prompt(message) as run:
        return await run.wait()


async def _leave_early(client: PiClient) -> RunOutcome:
    """Leave the run after a few streamed updates: ``Run`` aborts it on the way out."""
    await client.get_state()
    updates = 0
    async with client.prompt("Write a long answer.") as run:
        async for event in run:
            updates += isinstance(event, MessageUpdate)
            if updates == ABORT_AFTER_UPDATES:
                break
    assert run.outcome is not None
    return run.outcome


SCENARIOS: dict[str, Scenario] = {
    "text": Scenario(
        lambda: [script.text("Hello from the scripted model.", pieces=4)],
        lambda client: _prompt(client, "Say hello."),
    ),
    "tool": Scenario(script.tool_then_answer, lambda client: _prompt(client, "Run echo.")),
    "multi_stage": Scenario(script.multi_stage, lambda client: _prompt(client, "Two steps.")),
    "retry": Scenario(script.error_then_answer, lambda client: _prompt(client, "Try again.")),
    "failed": Scenario(
        lambda: [script.http_error(400, "scripted LLM: bad request")],
        lambda client: _prompt(client, "Fail."),
    ),
    "abort": Scenario(
        lambda: [script.text("word " * 200, pieces=200, delay=0.02)],
        _leave_early,
    ),
}


def outcome_record(outcome: RunOutcome) -> dict[str, Any]:
    """What a conversation's header keeps of how its run ended."""
    return {
        "status": outcome.status,
        "error": outcome.error,
        "final_text": outcome.final_text,
        "messages": len(outcome.messages),
        "handled_without_run": outcome.handled_without_run,
    }


def _dump(record: Record) -> dict[str, Any]:
    dumped: dict[str, Any] = record.model_dump(mode="json", exclude_unset=True)
    return dumped


# -- replaying ----------------------------------------------------------------------------------


class ReplayedPi:
    """Pi's side of a recorded conversation, as a ``Connection``."""

    pid = 0

    def __init__(self, path: Path) -> None:
        lines = path.read_text(encoding="utf-8").splitlines()
        self.header: dict[str, Any] = json.loads(lines[0])
        self._script: list[dict[str, Any]] = [json.loads(line) for line in lines[1:]]
        self._at = 0
        self._sink: MemoryObjectSendStream[Item]
        self._sink, self.records = anyio.create_memory_object_stream[Item](math.inf)
        self.stderr = StderrTail()
        self.sent: list[dict[str, Any]] = []
        self._release()

    def _release(self) -> None:
        """Hand over Pi's records up to the next command the client must send."""
        while self._at < len(self._script) and "read" in self._script[self._at]:
            self._sink.send_nowait(parse_record(json.dumps(self._script[self._at]["read"])))
            self._at += 1

    async def send(self, record: Mapping[str, Any]) -> None:
        sent = json.loads(json.dumps(dict(record)))  # as it would go over the wire
        self.sent.append(sent)
        expected = self._script[self._at]["sent"] if self._at < len(self._script) else None
        assert sent == expected, f"the client sent {sent}; the recorded client sent {expected}"
        self._at += 1
        self._release()

    async def wait(self, timeout: float) -> int | None:
        return None  # a replayed Pi never exits

    def close(self) -> None:
        self._sink.close()
        self.records.close()


def install_of(header: Mapping[str, Any]) -> PiInstall:
    """The Pi a conversation was recorded with, as the client knows it (its version decides
    how runs settle)."""
    return PiInstall(
        path=Path("replayed"),
        source="setting",
        argv=("replayed",),
        package=header["package"],
        version=header["version"],
    )


async def replay(path: Path) -> tuple[RunOutcome, ReplayedPi]:
    pi = ReplayedPi(path)
    scenario = SCENARIOS[pi.header["scenario"]]
    try:
        with anyio.fail_after(REPLAY_TIMEOUT):
            async with connect(pi, install_of(pi.header)) as client:
                outcome = await scenario.drive(client)
    finally:
        pi.close()
    return outcome, pi


def lines_of(path: Path, direction: str) -> list[dict[str, Any]]:
    """A conversation's commands (``sent``) or Pi's records (``read``), in order."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    return [line[direction] for line in lines if direction in line]


# -- recording ----------------------------------------------------------------------------------


class RecordingPi:
    """A real Pi's ``Connection``, writing down both directions as they happen."""

    def __init__(self, transport: Connection) -> None:
        self._transport = transport
        self.lines: list[dict[str, Any]] = []
        self._sink: MemoryObjectSendStream[Item]
        self._sink, self.records = anyio.create_memory_object_stream[Item](math.inf)
        self.stderr = transport.stderr

    @property
    def pid(self) -> int:
        return self._transport.pid

    async def copy(self, source: MemoryObjectReceiveStream[Item]) -> None:
        async with self._sink:
            async for item in source:
                assert not isinstance(item, PiProtocolError), item
                self.lines.append({"read": _dump(item)})
                await self._sink.send(item)

    async def send(self, record: Mapping[str, Any]) -> None:
        self.lines.append({"sent": json.loads(json.dumps(dict(record)))})
        await self._transport.send(record)

    async def wait(self, timeout: float) -> int | None:
        return await self._transport.wait(timeout)


@asynccontextmanager
async def recorded_client(
    install: PiInstall, env: dict[str, str], cwd: Path
) -> AsyncIterator[tuple[PiClient, RecordingPi]]:
    argv = [*install.argv, "--mode", "rpc", *ARGS]
    async with open_transport(argv, cwd=str(cwd), env=env) as transport:
        recording = RecordingPi(transport)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(recording.copy, transport.records)
            async with connect(recording, install) as client:
                yield client, recording
            tasks.cancel_scope.cancel()


async def record(install: PiInstall, name: str, scenario: Scenario, root: Path) -> Path:
    from tests.support.pi_env import pi_env_for

    with ScriptedLLM() as llm:
        llm.enqueue(*scenario.replies())
        pi_env = pi_env_for(root / name, llm.base_url)
        async with recorded_client(install, pi_env.env, pi_env.cwd) as (client, recording):
            outcome = await scenario.drive(client)
    header = {
        "package": install.package,
        "version": install.version,
        "scenario": name,
        "outcome": outcome_record(outcome),
    }
    path = CONVERSATIONS / str(install.version) / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [header, *recording.lines]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


async def record_all() -> None:
    from tests.support.pis import COMPAT_PIS, CURRENT_PI

    with tempfile.TemporaryDirectory() as root:
        for pinned in (CURRENT_PI, *COMPAT_PIS):
            install = pinned.locate()
            for name, scenario in SCENARIOS.items():
                path = await record(install, name, scenario, Path(root) / str(install.version))
                print(f"recorded {path.relative_to(CONVERSATIONS)}", file=sys.stderr)


if __name__ == "__main__":
    anyio.run(record_all)
