"""The kernel tools' channel: only its own Pi (the secret, this user) gets a call through.

The channel is the unit under test here, with a real Unix socket; the tools behind it are a
recording stand-in (what they do in a kernel is tested with real kernels and Pi)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from pi_kernel import variables
from pi_kernel.errors import PiError
from pi_kernel.kernel_tools import channel as channel_module
from pi_kernel.kernel_tools import folders
from pi_kernel.kernel_tools.catalog import (
    EXTENSION,
    PYTHON,
    TOOL_NAMES,
    KernelToolCall,
    ToolReply,
    Verdict,
)
from pi_kernel.kernel_tools.channel import ToolChannel
from pi_kernel.rpc.usage import UsageTally

NOBODY = 65534
SYSTEM_PYTHON = Path("/usr/bin/python3")
"""A Python that another user may run (the suite's own may sit in root's home)."""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[KernelToolCall] = []
        self.asked_about: list[KernelToolCall] = []

    def offered(self) -> Sequence[str]:
        return [PYTHON]

    def asked(self) -> Sequence[str]:
        return ["bash"]

    def budgeted(self) -> bool:
        return False

    def budget_stop(self, run_usage: UsageTally) -> str | None:
        return f"stop at {run_usage.tokens}" if run_usage.tokens > 10 else None

    async def approve(self, call: KernelToolCall) -> Verdict:
        self.asked_about.append(call)
        if call.args.get("command") == "boom":
            raise RuntimeError("the cell went away")
        return Verdict(False, "The user did not approve this bash call. Their reason: no.")

    async def call(self, call: KernelToolCall) -> ToolReply:
        self.calls.append(call)
        return ToolReply(f"ran {call.args['code']}")


def ask(path: str, request: dict[str, object] | bytes) -> dict[str, object]:
    """One request as the extension sends it (blocking: run it in a thread)."""
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(path)
        raw = request if isinstance(request, bytes) else json.dumps(request).encode() + b"\n"
        client.sendall(raw)
        client.shutdown(socket.SHUT_WR)
        return dict(json.loads(client.makefile("rb").readline()))


@pytest.mark.anyio
async def test_a_call_with_the_secret_reaches_the_tools_and_comes_back():
    tools = Recorder()
    async with ToolChannel(tools) as channel:
        path, secret = channel.env[variables.TOOLS_SOCKET], channel.secret_file.read_text()
        offer = await anyio.to_thread.run_sync(ask, path, {"secret": secret, "op": "offer"})
        request = {"secret": secret, "op": "call", "tool": PYTHON, "callId": "c1"}
        reply = await anyio.to_thread.run_sync(ask, path, {**request, "args": {"code": "1"}})
    assert offer == {"ok": True, "tools": [PYTHON], "ask": ["bash"], "budget": False}
    assert reply == {"ok": True, "content": [{"type": "text", "text": "ran 1"}], "isError": False}
    assert tools.calls == [KernelToolCall(PYTHON, "c1", {"code": "1"})]
    assert (channel.offers, channel.calls, channel.refused) == (1, 1, 0)


@pytest.mark.anyio
async def test_the_budget_is_asked_with_what_the_run_spent():
    async with ToolChannel(Recorder()) as channel:
        path, secret = channel.env[variables.TOOLS_SOCKET], channel.secret_file.read_text()
        usage = {"input": 8, "output": 3, "cacheRead": 0, "cacheWrite": 0, "cost": {"total": 0}}
        over = await anyio.to_thread.run_sync(
            ask, path, {"secret": secret, "op": "budget", "usage": usage}
        )
        within = await anyio.to_thread.run_sync(ask, path, {"secret": secret, "op": "budget"})
    assert over == {"ok": True, "stop": "stop at 11"}
    assert within == {"ok": True, "stop": None}


@pytest.mark.anyio
async def test_an_approval_is_asked_of_the_tools_and_a_failure_to_ask_is_no_yes():
    tools = Recorder()
    async with ToolChannel(tools) as channel:
        path, secret = channel.env[variables.TOOLS_SOCKET], channel.secret_file.read_text()
        request = {"secret": secret, "op": "approve", "tool": "bash", "callId": "c2"}
        denied = await anyio.to_thread.run_sync(ask, path, {**request, "args": {"command": "ls"}})
        failed = await anyio.to_thread.run_sync(ask, path, {**request, "args": {"command": "boom"}})
    assert denied == {
        "ok": True,
        "allowed": False,
        "reason": "The user did not approve this bash call. Their reason: no.",
    }
    why = "the kernel could not ask about bash: the cell went away"
    assert failed == {"ok": False, "error": why}
    assert tools.asked_about == [
        KernelToolCall("bash", "c2", {"command": "ls"}),
        KernelToolCall("bash", "c2", {"command": "boom"}),
    ]
    assert tools.calls == []
    assert channel.stats() == (0, 0, 2, 0)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "request_",
    [
        {"secret": "guessed", "op": "call", "tool": PYTHON, "args": {"code": "1"}},
        {"op": "call", "tool": PYTHON, "args": {"code": "1"}},
        b"not json\n",
        b'{"secret": "x", "op": "call"',  # no end of line: the caller hung up
    ],
    ids=["wrong secret", "no secret", "not json", "cut short"],
)
async def test_a_caller_without_the_secret_is_refused_and_nothing_runs(request_: object):
    tools = Recorder()
    async with ToolChannel(tools) as channel:
        reply = await anyio.to_thread.run_sync(ask, channel.env[variables.TOOLS_SOCKET], request_)
    assert reply["ok"] is False
    assert tools.calls == []
    assert channel.refused == 1


@pytest.mark.anyio
async def test_the_socket_lives_in_a_private_folder_that_goes_with_the_channel():
    async with ToolChannel(Recorder()) as channel:
        folder = channel.path.parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(channel.path.stat().st_mode) == 0o600
        assert channel.args == ("-e", str(EXTENSION))
    assert not folder.exists()


@pytest.mark.anyio
@pytest.mark.skipif(os.getuid() != 0, reason="acting as another user needs root")
@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no system Python for another user")
async def test_another_user_cannot_reach_the_socket_nor_be_served_through_it(
    monkeypatch: pytest.MonkeyPatch,
):
    # A runtime directory of this test's own, in a folder another user may enter.
    runtime = Path(tempfile.mkdtemp())
    runtime.chmod(0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    tools = Recorder()
    script = (
        "import json, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n    s.connect(sys.argv[1])\n"
        "except PermissionError:\n    print('permission denied'); sys.exit()\n"
        "request = json.dumps({'secret': sys.argv[2], 'op': 'offer'}).encode() + b'\\n'\n"
        "try:\n    s.sendall(request)\n"
        # Refused by uid before it is read: the refusal may already wait while this sends.
        "except BrokenPipeError:\n    pass\n"
        "print(s.makefile().readline())\n"
    )

    def as_nobody(path: Path, secret: str) -> str:
        run = subprocess.run(
            [SYSTEM_PYTHON, "-c", script, str(path), secret],
            user=NOBODY,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return run.stdout + run.stderr

    async with ToolChannel(tools) as channel:
        secret = channel.secret_file.read_text()
        assert "permission denied" in await anyio.to_thread.run_sync(
            as_nobody, channel.path, secret
        )
        # Even with the folder opened up and the secret known, the peer's uid is checked.
        channel.path.parent.chmod(0o755)
        channel.path.parent.parent.chmod(0o755)
        channel.path.chmod(0o777)
        answer = await anyio.to_thread.run_sync(as_nobody, channel.path, secret)
    shutil.rmtree(runtime)
    assert "only the user who runs the kernel" in answer
    assert channel.offers == 0
    assert channel.refused == 1


def test_the_extension_offers_exactly_the_catalogs_tools():
    source = EXTENSION.read_text(encoding="utf-8")
    declared = [
        line.split('"')[1] for line in source.splitlines() if line.strip().startswith('name: "')
    ]
    assert declared == list(TOOL_NAMES)
    assert variables.TOOLS_SOCKET in source
    assert variables.TOOLS_SECRET_FILE in source


@pytest.mark.anyio
async def test_the_secret_is_in_no_environment_but_in_a_private_file_beside_the_socket():
    async with ToolChannel(Recorder()) as channel:
        secret = channel.secret_file.read_text()
        assert len(secret) >= 32
        assert stat.S_IMODE(channel.secret_file.stat().st_mode) == 0o600
        assert channel.env == {
            variables.TOOLS_SOCKET: str(channel.path),
            variables.TOOLS_SECRET_FILE: str(channel.secret_file),
        }


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.anyio
async def test_a_flood_of_idle_connections_holds_few_descriptors_and_a_request_still_goes_through():
    tools = Recorder()
    idle: list[socket.socket] = []
    async with ToolChannel(tools) as channel:
        before = _open_fds()
        for _ in range(300):
            client = socket.socket(socket.AF_UNIX)
            client.connect(str(channel.path))
            idle.append(client)
            if len(idle) % 50 == 0:
                await anyio.sleep(0.05)  # the channel accepts as they come
        await anyio.sleep(0.3)
        held = _open_fds() - before - len(idle)
        secret = channel.secret_file.read_text()
        request = {"secret": secret, "op": "call", "tool": PYTHON, "callId": "c1"}
        reply = await anyio.to_thread.run_sync(
            ask, str(channel.path), {**request, "args": {"code": "1"}}
        )
        closed = sum(1 for client in idle if _closed_by_the_channel(client))
    for client in idle:
        client.close()
    assert held <= channel_module.MAX_WAITING + 2
    assert reply["ok"] is True
    assert closed >= len(idle) - channel_module.MAX_WAITING
    assert tools.calls == [KernelToolCall(PYTHON, "c1", {"code": "1"})]


def _closed_by_the_channel(client: socket.socket) -> bool:
    client.setblocking(False)
    try:
        return client.recv(1) == b""
    except BlockingIOError:
        return False


@pytest.mark.anyio
async def test_a_connection_that_sends_nothing_is_let_go(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(channel_module, "REQUEST_TIMEOUT", 0.2)
    async with ToolChannel(Recorder()) as channel:
        client = socket.socket(socket.AF_UNIX)
        client.connect(str(channel.path))
        client.settimeout(5)
        said = await anyio.to_thread.run_sync(client.recv, 100)
        client.close()
    assert said == b""  # closed, no answer
    assert channel.refused == 1


@pytest.mark.anyio
async def test_a_runtime_folder_too_long_for_a_socket_gives_way_to_a_short_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    long = tmp_path / ("r" * 60) / ("u" * 60)
    long.mkdir(parents=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(long))
    async with ToolChannel(Recorder()) as channel:
        secret = channel.secret_file.read_text()
        offer = await anyio.to_thread.run_sync(
            ask, str(channel.path), {"secret": secret, "op": "offer"}
        )
    assert offer["ok"] is True
    assert len(os.fsencode(channel.path)) <= 107
    assert channel.path.parent.parent == Path("/tmp")


FLOOD = """
import json, socket, sys
path, secret = sys.argv[1], sys.argv[2]
sys.stdin.readline()  # the kernel's side is ready: its descriptors are few now
idle = []
for _ in range(120):
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    idle.append(client)
print("flooded", flush=True)
with socket.socket(socket.AF_UNIX) as client:
    client.settimeout(20)
    client.connect(path)
    client.sendall(json.dumps({"secret": secret, "op": "offer"}).encode() + b"\\n")
    print(client.makefile("rb").readline().decode(), flush=True)
"""


@pytest.mark.anyio
async def test_a_kernel_out_of_descriptors_goes_on_accepting_and_says_so_once_per_stretch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    # The kernel's own descriptor limit, not the channel's bound, is what the flood meets
    # here: accept() fails with EMFILE until the waiting connections time out.
    monkeypatch.setattr(channel_module, "REQUEST_TIMEOUT", 0.3)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    async with ToolChannel(Recorder()) as channel:
        secret = channel.secret_file.read_text()
        async with await anyio.open_process(
            [sys.executable, "-c", FLOOD, str(channel.path), secret]
        ) as flood:
            assert flood.stdin is not None
            assert flood.stdout is not None
            resource.setrlimit(resource.RLIMIT_NOFILE, (_open_fds() + 8, hard))
            try:
                await flood.stdin.send(b"go\n")
                with anyio.fail_after(30):
                    said = b""
                    while said.count(b"\n") < 2:
                        said += await flood.stdout.receive()
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    reply = json.loads(said.decode().splitlines()[1])
    assert reply["ok"] is True
    failed = [r for r in caplog.records if "cannot accept now" in r.getMessage()]
    recovered = [r for r in caplog.records if "accepts again" in r.getMessage()]
    assert failed  # the limit was really met
    assert len(failed) - len(recovered) in (0, 1)


@pytest.mark.anyio
async def test_a_channel_that_cannot_start_leaves_no_folder_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))

    async def no_listener(*args: object, **kwargs: object) -> None:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(channel_module.anyio, "create_unix_listener", no_listener)
    with pytest.raises(OSError, match="in use"):
        async with ToolChannel(Recorder()):
            pass
    assert not list(tmp_path.rglob("tools-*"))


@pytest.mark.anyio
async def test_no_place_for_the_socket_is_one_sentence_naming_each_place_tried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    long = tmp_path / ("r" * 60) / ("u" * 60)
    long.mkdir(parents=True)
    not_a_folder = Path("/dev/null")  # short: a path under tmp_path may be too long itself
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(long))
    monkeypatch.setattr(folders, "SHORT_BASES", (not_a_folder,))
    with pytest.raises(PiError) as raised:
        async with ToolChannel(Recorder()):
            pass
    message = str(raised.value)
    assert message.startswith("There is no folder for the kernel tools' socket (")
    assert "is too long for a Unix socket's path" in message
    assert f"{not_a_folder}: Not a directory" in message
    assert "XDG_RUNTIME_DIR" in (raised.value.hint or "")
