"""Framing, encoding and process handling of the transport.

The framing tests feed bytes directly.  The process tests start a tiny stand-in program
instead of Pi where Pi cannot be made to misbehave on demand (a malformed line, a process
that ignores SIGTERM); everything Pi can do for real is tested against Pi in
``test_client_live.py``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import anyio
import psutil
import pytest

from pi_kernel.rpc import transport as transport_module
from pi_kernel.rpc.errors import PiNotFound, PiProtocolError
from pi_kernel.rpc.processes import KILL_GRACE
from pi_kernel.rpc.protocol import AgentStart, Response, UnknownEvent
from pi_kernel.rpc.transport import (
    SIGTERM_GRACE,
    STDIN_CLOSE_GRACE,
    LineFramer,
    StderrTail,
    decode_line,
    encode_command,
    open_transport,
)


def frame(*chunks: bytes) -> list[bytes]:
    framer = LineFramer()
    lines = [line for chunk in chunks for line in framer.feed(chunk)]
    return lines + list(framer.finish())


def test_lines_split_on_lf_only_never_on_unicode_separators():
    text = '{"t":"a\u2028b\u2029c\x85d"}'.encode()
    assert frame(text + b"\n" + text + b"\n") == [text, text]


def test_crlf_loses_its_cr():
    assert frame(b"one\r\ntwo\r\n") == [b"one", b"two"]


def test_a_line_split_across_many_chunks_is_joined_once():
    big = b"x" * (5 * 1024 * 1024)
    chunks = [big[i : i + 65536] for i in range(0, len(big), 65536)]
    assert frame(b"head\n", *chunks, b"\ntail\n") == [b"head", big, b"tail"]


def test_the_last_line_without_lf_is_not_lost():
    assert frame(b"first\nsecond") == [b"first", b"second"]
    assert frame(b"first\n") == [b"first"]


def test_a_malformed_line_becomes_an_error_value():
    assert isinstance(decode_line(b'{"type":"agent_start"}'), AgentStart)
    assert isinstance(decode_line(b"not json at all"), PiProtocolError)
    assert isinstance(decode_line(b"[1, 2]"), PiProtocolError)
    assert isinstance(decode_line(b'{"no_type": true}'), UnknownEvent)


def test_commands_are_one_line_and_never_null():
    line = encode_command({"type": "prompt", "message": "a\nb\u2028c"})
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert json.loads(line) == {"type": "prompt", "message": "a\nb\u2028c"}
    with pytest.raises(TypeError):
        encode_command(None)  # type: ignore[arg-type]


def test_stderr_tail_keeps_only_the_newest_bytes():
    tail = StderrTail(limit=32)
    for index in range(100):
        tail.add(f"line {index}\n".encode())
    assert tail.lines()[-1] == "line 99"
    assert "line 0" not in tail.lines()
    assert len("\n".join(tail.lines())) <= 32


def test_stderr_lines_wait_whole_and_unread_until_taken():
    tail = StderrTail()
    tail.add(b"Warning: Could not res")
    assert list(tail.unread) == []  # half a line is not a line yet
    tail.add(b"tore model p/x\n\nsecond\n")
    assert list(tail.unread) == ["Warning: Could not restore model p/x", "second"]


STAND_IN = """
import sys, signal, time
mode = sys.argv[1]
out = sys.stdout.buffer
if mode == "noisy":
    out.write(b'{"type":"agent_start"}\\n')
    out.write(b'this is not json\\n')
    out.write(b'{"type":"mystery","x":1}\\n')
    out.write(b'{"type":"response","command":"get_state","success":true,"data":{"big":"'
              + b"y" * (5 * 1024 * 1024) + b'"}}\\n')
    out.write(b'{"type":"agent_start"}')  # no final LF
    out.flush()
    sys.exit(0)
if mode == "detacher":
    import subprocess
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    line = '{"type":"response","command":"x","success":true,"data":%d}\\n' % child.pid
    out.write(line.encode())
    out.flush()
    time.sleep(60)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out.write(b'{"type":"agent_start"}\\n'); out.flush()
    while True:
        time.sleep(1)
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    path = tmp_path / "stand_in.py"
    path.write_text(STAND_IN)
    return path


@pytest.mark.anyio
async def test_reader_survives_bad_lines_and_loses_nothing_after_them(stand_in: Path):
    received = []
    async with open_transport([sys.executable, str(stand_in), "noisy"]) as transport:
        with anyio.fail_after(10):
            async for record in transport.records:
                received.append(record)
    assert [type(item) for item in received] == [
        AgentStart,
        PiProtocolError,
        UnknownEvent,
        Response,
        AgentStart,
    ]
    big = received[3]
    assert isinstance(big, Response)
    assert len(big.data["big"]) == 5 * 1024 * 1024


@pytest.mark.timing
@pytest.mark.anyio
async def test_shutdown_escalates_to_sigkill_within_its_bounds(
    stand_in: Path, monkeypatch: pytest.MonkeyPatch
):
    # Short graces prove the same escalation without sleeping out the real 2 s each.
    monkeypatch.setattr(transport_module, "STDIN_CLOSE_GRACE", STDIN_CLOSE_GRACE / 4)
    monkeypatch.setattr(transport_module, "SIGTERM_GRACE", SIGTERM_GRACE / 4)
    bound = STDIN_CLOSE_GRACE / 4 + SIGTERM_GRACE / 4 + KILL_GRACE + 1
    async with open_transport([sys.executable, str(stand_in), "stubborn"]) as transport:
        pid = transport.pid
        with anyio.fail_after(10):
            await transport.records.receive()
        started = time.monotonic()
    assert time.monotonic() - started < bound
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.anyio
async def test_a_missing_program_is_pi_not_found_naming_it(tmp_path: Path):
    missing = tmp_path / "nowhere" / "pi"
    with pytest.raises(PiNotFound) as caught:
        async with open_transport([str(missing)]):
            pass
    assert str(missing) in str(caught.value)


@pytest.mark.anyio
async def test_detached_children_of_a_killed_pi_are_killed_at_shutdown(stand_in: Path):
    async with open_transport([sys.executable, str(stand_in), "detacher"]) as transport:
        with anyio.fail_after(10):
            announced = await transport.records.receive()
        assert isinstance(announced, Response)
        child = psutil.Process(announced.data)
        os.killpg(transport.pid, signal.SIGKILL)  # Pi dies without cleaning up its tools
        assert child.is_running()
    _, alive = psutil.wait_procs([child], timeout=2)  # SIGKILL was sent; let it land
    assert not alive or child.status() == psutil.STATUS_ZOMBIE
