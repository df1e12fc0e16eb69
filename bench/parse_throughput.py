"""Parse throughput of the RPC client against plain ``json.loads``, on real Pi streams.

Usage, from the repository root::

    .venv/bin/python bench/parse_throughput.py [--tokens N] [--legacy-tokens N] [--rounds N]
    .venv/bin/python bench/parse_throughput.py --from-recorded   # re-measure saved streams

Two streams are recorded live against the scripted LLM server of the test suite:

* the project's Pi (the pinned ``npm ci`` install) answering one prompt with a long text
  (``--tokens``, default 100 000), from start to ``agent_settled``;
* the legacy Pi 0.73.1 (``tests/legacy``), whose ``message_update`` lines repeat the whole
  partial message twice, so its stream grows quadratically with the answer: a shorter answer
  (``--legacy-tokens``, default 3 000), up to the first ``agent_end`` (0.73 has no
  ``agent_settled``).

Each stream is then parsed, in the same process and in interleaved rounds, by

* the baseline: ``bytes.split(b"\\n")`` and ``json.loads`` per non-empty line, and
* the client: ``LineFramer`` fed 64 KiB chunks (what the transport reads) and ``decode_line``
  per non-empty line (pydantic ``validate_json`` into the record models).

The median of the rounds is reported, with the ratio client/baseline; the target is 2.0.
This is a benchmark, not a test: it exits 0 when the target is missed, and says so.
Streams and results go to ``bench/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The scripted LLM server and agent-dir writer live in the test package.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pydantic  # noqa: E402
import pydantic_core  # noqa: E402
from tests.support.pi_env import pi_env_for  # noqa: E402
from tests.support.scripted_llm import ScriptedLLM, long_text  # noqa: E402

from pi_kernel.rpc.errors import PiProtocolError  # noqa: E402
from pi_kernel.rpc.launch import PiInstall, locate_pi  # noqa: E402
from pi_kernel.rpc.transport import READ_CHUNK, LineFramer, decode_line  # noqa: E402

RESULTS = REPO / "bench" / "results"
CURRENT_PI = REPO / "node_modules" / ".bin" / "pi"
LEGACY_DIR = REPO / "tests" / "legacy"
LEGACY_PI = LEGACY_DIR / "node_modules" / ".bin" / "pi"
LEGACY_TRACE = REPO / "tests" / "data" / "traces" / "073" / "text.jsonl"

TARGET_RATIO = 2.0
"""The acceptance target: client time at most twice ``json.loads`` time."""
CHUNK_BYTES = READ_CHUNK
"""Bytes per framer feed: the transport's own stdout read size (64 KiB)."""
RECORD_TIMEOUT_S = 300.0
"""Upper bound on one live recording (Pi start to the stop line)."""
NPM_CI_TIMEOUT_S = 600.0
"""Upper bound on installing the legacy Pi."""
EXIT_GRACE_S = 3.0
"""Seconds Pi gets at each shutdown step (stdin closed, SIGTERM, SIGKILL)."""
FALLBACK_MIN_BYTES = 4_000_000
"""Size the repeated 0.73.1 trace is grown to when the legacy Pi cannot run."""
PROMPT = "Write a very long essay about foxes, dogs and wizards."


# --------------------------------------------------------------------------------------
# Streams


@dataclass
class Stream:
    """One recorded Pi stdout: the bytes and how they were obtained."""

    key: str
    label: str
    pi_version: str | None
    tokens: int | None
    source: str
    """``live`` (recorded now), ``recorded`` (read back from bench/results) or ``trace``."""
    note: str = ""
    record_seconds: float | None = None
    data: bytes = field(default=b"", repr=False)

    @property
    def path(self) -> Path:
        return RESULTS / f"stream-{self.key}.jsonl"

    def meta(self) -> dict[str, Any]:
        meta = asdict(self)
        del meta["data"]
        return meta


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """Close stdin, then SIGTERM, then SIGKILL Pi's process group; every wait bounded."""
    if process.stdin is not None:
        with suppress(OSError):
            process.stdin.close()
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
        try:
            process.wait(EXIT_GRACE_S)
            break
        except subprocess.TimeoutExpired:
            continue
    # Anything Pi spawned shares its group and may outlive it.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.stdout is not None:
        process.stdout.close()


def _is_stop_line(line: bytes, stop_type: str) -> bool:
    # The substring test keeps the check cheap; json confirms it is the record's own type.
    if stop_type.encode() not in line:
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and record.get("type") == stop_type


def record_live(install: PiInstall, tokens: int, stop_type: str, timeout: float) -> bytes:
    """Pi's raw stdout for one prompt answered with ``long_text(tokens)``, up to ``stop_type``."""
    with ScriptedLLM() as llm, tempfile.TemporaryDirectory(prefix="pi-bench-") as tmp:
        llm.enqueue(long_text(tokens))
        root = Path(tmp)
        pi_env = pi_env_for(root, llm.base_url)
        env, cwd = pi_env.env, pi_env.cwd
        argv = [
            *install.argv,
            *("--mode", "rpc", "--no-session", "--provider", "scripted", "--model", "plain"),
        ]
        # stderr goes to a file: nobody drains a pipe while we read stdout, and Pi would block.
        with (root / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        try:
            assert process.stdin is not None
            assert process.stdout is not None
            command = {"id": "b1", "type": "prompt", "message": PROMPT}
            process.stdin.write(json.dumps(command).encode() + b"\n")
            process.stdin.flush()
            return _read_until(process, stop_type, timeout)
        except BaseException as exc:
            tail = (root / "stderr.log").read_bytes()[-2000:].decode("utf-8", "replace")
            if tail.strip() and not isinstance(exc, KeyboardInterrupt):
                print(f"Pi stderr (tail):\n{tail}", file=sys.stderr)
            raise
        finally:
            _stop_process(process)


def _read_until(process: subprocess.Popen[bytes], stop_type: str, timeout: float) -> bytes:
    """Read stdout until the first line whose type is ``stop_type``; the bytes up to its LF."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    buffer = bytearray()
    scanned = 0  # everything before this offset holds no stop line
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {stop_type} line within {timeout:.0f} s")
            if not selector.select(left):
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise RuntimeError(
                    f"Pi closed stdout (exit {process.poll()}) before {stop_type}; "
                    f"{len(buffer)} bytes read"
                )
            buffer += chunk
            while (newline := buffer.find(b"\n", scanned)) != -1:
                if _is_stop_line(bytes(buffer[scanned:newline]), stop_type):
                    return bytes(buffer[: newline + 1])
                scanned = newline + 1


def ensure_legacy_install() -> str | None:
    """Install the legacy Pi if missing; ``None`` when ready, else why it is unavailable."""
    if LEGACY_PI.exists():
        return None
    print(f"legacy Pi missing; running npm ci --prefix {LEGACY_DIR.relative_to(REPO)}")
    try:
        subprocess.run(
            ["npm", "ci", "--prefix", str(LEGACY_DIR)],
            check=True,
            timeout=NPM_CI_TIMEOUT_S,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"npm ci failed: {exc}"
    return None if LEGACY_PI.exists() else "npm ci did not produce node_modules/.bin/pi"


def trace_fallback(reason: str) -> Stream:
    """The committed 0.73.1 trace, repeated: real 0.73.1 lines, but a tiny answer."""
    trace = LEGACY_TRACE.read_bytes()
    repeats = -(-FALLBACK_MIN_BYTES // len(trace))
    return Stream(
        key="0.73.1",
        label="0.73.1 (committed trace, repeated)",
        pi_version="0.73.1",
        tokens=None,
        source="trace",
        note=f"legacy Pi unavailable ({reason}); {LEGACY_TRACE.name} repeated {repeats}x",
        data=trace * repeats,
    )


def record_stream(
    path: Path, key: str, label: str, tokens: int, stop_type: str, timeout: float
) -> Stream:
    """Record one live stream from the Pi at ``path`` (``key`` names it in the results)."""
    install = locate_pi(path)
    print(f"recording {install.describe()}, {tokens} tokens ...", flush=True)
    started = time.perf_counter()
    data = record_live(install, tokens, stop_type, timeout)
    return Stream(
        key=key,
        label=f"{install.version}{label}",
        pi_version=install.version,
        tokens=tokens,
        source="live",
        record_seconds=time.perf_counter() - started,
        data=data,
    )


def record_streams(tokens: int, legacy_tokens: int, timeout: float) -> list[Stream]:
    # Pi >= 0.80.4 ends a run with agent_settled; 0.73.1 has none: its first agent_end ends it.
    streams = [record_stream(CURRENT_PI, "current", " (live)", tokens, "agent_settled", timeout)]
    unavailable = ensure_legacy_install()
    if unavailable is not None:
        print(f"note: {unavailable}; falling back to the committed 0.73.1 trace")
        streams.append(trace_fallback(unavailable))
    else:
        streams.append(
            record_stream(LEGACY_PI, "0.73.1", "-style (live)", legacy_tokens, "agent_end", timeout)
        )
    return streams


def save_streams(streams: Sequence[Stream]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    for stream in streams:
        stream.path.write_bytes(stream.data)
    index = [stream.meta() for stream in streams]
    (RESULTS / "streams.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def load_streams() -> list[Stream]:
    index_path = RESULTS / "streams.json"
    if not index_path.exists():
        raise SystemExit(f"no recorded streams in {RESULTS}; run once without --from-recorded")
    streams = []
    for meta in json.loads(index_path.read_text(encoding="utf-8")):
        stream = Stream(**meta)
        stream.data = stream.path.read_bytes()
        if stream.source == "live":
            stream.source = "recorded"
        streams.append(stream)
    return streams


# --------------------------------------------------------------------------------------
# Parsing


def parse_baseline(data: bytes) -> int:
    """The floor: split on LF and ``json.loads`` every non-empty line."""
    count = 0
    for line in data.split(b"\n"):
        if line:
            json.loads(line)
            count += 1
    return count


def parse_client(data: bytes) -> int:
    """What the transport does: 64 KiB chunks through ``LineFramer``, then ``decode_line``."""
    framer = LineFramer()
    count = 0
    for start in range(0, len(data), CHUNK_BYTES):
        for line in framer.feed(data[start : start + CHUNK_BYTES]):
            if line:
                decode_line(line)
                count += 1
    for line in framer.finish():
        if line:
            decode_line(line)
            count += 1
    return count


def _timed(parse: Callable[[bytes], int], data: bytes) -> tuple[float, int]:
    # A collection left over from the previous run must not land in this one's timing.
    gc.collect()
    started = time.perf_counter()
    count = parse(data)
    return time.perf_counter() - started, count


@dataclass
class Measurement:
    key: str
    label: str
    pi_version: str | None
    tokens: int | None
    source: str
    note: str
    lines: int
    megabytes: float
    longest_line_bytes: int
    record_types: dict[str, int]
    protocol_errors: int
    baseline_seconds: list[float]
    client_seconds: list[float]

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline_seconds)

    @property
    def client_median(self) -> float:
        return statistics.median(self.client_seconds)

    @property
    def ratio(self) -> float:
        return self.client_median / self.baseline_median

    @property
    def met(self) -> bool:
        return self.ratio <= TARGET_RATIO

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "baseline_median_seconds": self.baseline_median,
            "client_median_seconds": self.client_median,
            "baseline_mb_per_s": self.megabytes / self.baseline_median,
            "client_mb_per_s": self.megabytes / self.client_median,
            "round_ratios": [
                c / b for b, c in zip(self.baseline_seconds, self.client_seconds, strict=True)
            ],
            "ratio": self.ratio,
            "target_met": self.met,
        }


def measure(stream: Stream, rounds: int) -> Measurement:
    data = stream.data
    lines = [line for line in data.split(b"\n") if line]
    types: Counter[str] = Counter()
    for line in lines:
        record = json.loads(line)
        types[str(record.get("type")) if isinstance(record, dict) else "?"] += 1
    errors = sum(isinstance(decode_line(line), PiProtocolError) for line in lines)

    # Warm both paths (imports, pydantic's lazy schema work) before any timed run.
    parse_baseline(data)
    parse_client(data)
    baseline: list[float] = []
    client: list[float] = []
    for round_index in range(rounds):
        # Alternate which side goes first so drift (thermal, caches) hits both alike.
        order = [("baseline", parse_baseline), ("client", parse_client)]
        if round_index % 2:
            order.reverse()
        for name, parse in order:
            seconds, count = _timed(parse, data)
            if count != len(lines):
                raise AssertionError(f"{name} saw {count} lines, expected {len(lines)}")
            (baseline if name == "baseline" else client).append(seconds)
    return Measurement(
        key=stream.key,
        label=stream.label,
        pi_version=stream.pi_version,
        tokens=stream.tokens,
        source=stream.source,
        note=stream.note,
        lines=len(lines),
        megabytes=len(data) / 1e6,
        longest_line_bytes=max((len(line) for line in lines), default=0),
        record_types=dict(types.most_common()),
        protocol_errors=errors,
        baseline_seconds=baseline,
        client_seconds=client,
    )


# --------------------------------------------------------------------------------------
# Report


def markdown_table(results: Sequence[Measurement]) -> str:
    rows = [
        "| stream | tokens | lines | MB | json.loads MB/s | client MB/s | ratio | target ≤ 2.0 |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for m in results:
        rows.append(
            f"| {m.label} | {m.tokens if m.tokens is not None else '-'} | {m.lines} "
            f"| {m.megabytes:.2f} | {m.megabytes / m.baseline_median:.1f} "
            f"| {m.megabytes / m.client_median:.1f} | {m.ratio:.2f}x "
            f"| {'met' if m.met else '**MISSED**'} |"
        )
    return "\n".join(rows)


def write_report(name: str, report: dict[str, Any]) -> int:
    """Write ``report`` as JSON under bench/results/ and say where; the exit code is 0.

    A benchmark reports; a missed target is not a failure of the run.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / name
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results: {out.relative_to(REPO)} (total {report['total_seconds']:.1f} s)")
    return 0


def machine_info() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "pydantic": pydantic.VERSION,
        "pydantic_core": pydantic_core.__version__,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=100_000, help="the project Pi's answer")
    parser.add_argument(
        "--legacy-tokens", type=int, default=3_000, help="0.73.1 answer length (quadratic)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument(
        "--from-recorded", action="store_true", help="re-measure the streams in bench/results/"
    )
    parser.add_argument(
        "--timeout", type=float, default=RECORD_TIMEOUT_S, help="seconds per live recording"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    if args.from_recorded:
        streams = load_streams()
    else:
        streams = record_streams(args.tokens, args.legacy_tokens, args.timeout)
        save_streams(streams)
    for stream in streams:
        if stream.note:
            print(f"note: {stream.note}")

    results = [measure(stream, args.rounds) for stream in streams]
    print()
    print(f"Parse throughput, median of {args.rounds} interleaved rounds ({CHUNK_BYTES} B chunks)")
    print()
    print(markdown_table(results))
    print()
    for m in results:
        if m.protocol_errors:
            print(f"warning: {m.label}: {m.protocol_errors} line(s) decoded as PiProtocolError")
        if not m.met:
            print(
                f"TARGET MISSED on {m.label}: client is {m.ratio:.2f}x json.loads "
                f"(target ≤ {TARGET_RATIO:.1f}x)"
            )
    if all(m.met for m in results):
        print(f"target met on every stream (client ≤ {TARGET_RATIO:.1f}x json.loads)")

    report = {
        "machine": machine_info(),
        "rounds": args.rounds,
        "chunk_bytes": CHUNK_BYTES,
        "target_ratio": TARGET_RATIO,
        "target_met": all(m.met for m in results),
        "streams": [m.summary() for m in results],
        "record_seconds": {s.key: s.record_seconds for s in streams},
        "total_seconds": time.perf_counter() - started,
    }
    return write_report("parse_throughput.json", report)


if __name__ == "__main__":
    sys.exit(main())
