"""A long answer streamed through ``%%pi`` in a real kernel, against Pi's own stdout.

Usage, from the repository root::

    .venv/bin/python bench/magic_stream.py [--tokens N] [--rate R] [--rounds N] [--profile]

Two sides, each with its own scripted LLM server and isolated agent dir, both warm before
anything is timed (Pi started, one short turn and one untimed full-length round answered:
the first long answer is slow on both sides while Node and Python warm up), each round in a
fresh conversation (``new_session`` / ``%pi new``, untimed) so context never piles up:

* the baseline: the project's pinned Pi run as a plain subprocess in RPC mode; timed from
  writing the ``prompt`` command to reading the ``agent_settled`` line from its stdout;
* the magic: a real IPython kernel (``tests.support.kernels``) with ``%load_ext pi_magics``;
  timed from sending ``%%pi`` as an execute request to the kernel going idle, with every
  iopub message received and the display updates applied, as a frontend would.

Both answer the same prompt with ``long_text(--tokens)`` (default 100 000), in two passes:

* **paced** at ``--rate`` tokens a second (default 10 000, several times the fastest public
  providers): what a person sees, the magic's delay on top of Pi's own;
* **flat out**, as fast as the scripted server and Pi can go: the worst case.  On two cores
  Pi and the server already keep both busy, so here the ratio measures the CPU the kernel
  adds, not a delay anyone meets; it is reported with the CPU seconds of each side.

The rounds are interleaved (the side going first alternates) and medians are reported
against the acceptance targets: magic time at most 1.10x the baseline (paced), and display
bytes sent (every ``display_data`` and ``update_display_data`` payload) at most 3x the bytes
of the cell's final outputs.  ``--profile`` then runs one more flat-out turn in the kernel
under cProfile (the kernel's main thread, which renders, and the bridge thread, which reads
Pi) and prints the top entries of each.

This is a benchmark, not a test: it exits 0 when a target is missed, and says so.
Results go to ``bench/results/magic_stream.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import compileall
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The kernel harness, scripted LLM server and agent-dir writer live in the test package;
# the Pi subprocess helpers in the sibling benchmark.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import ipykernel  # noqa: E402
import IPython  # noqa: E402
import psutil  # noqa: E402
from bench.parse_throughput import (  # noqa: E402
    CURRENT_PI,
    PROMPT,
    write_report,
)
from bench.parse_throughput import _read_until as read_until  # noqa: E402
from bench.parse_throughput import _stop_process as stop_process  # noqa: E402
from bench.parse_throughput import machine_info as parse_machine_info  # noqa: E402
from tests.support.kernels import CellRun, KernelHarness, running_kernel  # noqa: E402
from tests.support.pi_env import PiEnv, pi_env_for  # noqa: E402
from tests.support.processes import processes_of  # noqa: E402
from tests.support.scripted_llm import Reply, ScriptedLLM, long_text, text  # noqa: E402

from pi_kernel.rpc.launch import PiInstall, locate_pi  # noqa: E402

TARGET_TIME_RATIO = 1.10
"""Acceptance: the magic takes at most 10 % longer than reading Pi's stdout."""
TARGET_BYTES_RATIO = 3.0
"""Acceptance: display bytes sent at most 3x the bytes of the cell's final outputs."""
DEFAULT_RATE = 10_000.0
"""Tokens a second in the paced pass: several times what the fastest public providers
stream, a hundred times a typical one."""
RUN_TIMEOUT_S = 300.0
"""Upper bound on one timed turn on either side (a 2-core machine under load)."""
COMMAND_TIMEOUT_S = 30.0
"""Upper bound on Pi's answer to a short command (get_state, new_session) or warm-up turn."""
EXIT_WAIT_S = 5.0
"""Seconds a process of the benchmark may take to disappear after it was stopped."""
PI_ARGS = ("--no-session", "--provider", "scripted", "--model", "plain")
"""The same Pi command line on both sides, after ``--mode rpc``."""
WARM_UP_PROMPT = "Say hello."
DISPLAY_MESSAGES = ("display_data", "update_display_data")
PROFILE_TOP = 25


def answer_text(reply: Reply) -> str:
    """The text a scripted reply streams."""
    return "".join(
        choice["delta"].get("content", "") for chunk in reply.chunks for choice in chunk["choices"]
    )


@contextmanager
def pi_sandbox(prefix: str) -> Iterator[tuple[ScriptedLLM, PiEnv]]:
    """A scripted LLM and an isolated environment (HOME, agent dir, cwd) pointed at it."""
    compiled_sources()
    with ScriptedLLM() as llm, tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        root = Path(tmp)
        yield llm, pi_env_for(root, llm.base_url)


@cache
def compiled_sources() -> None:
    """Bring the checkout's bytecode up to date, once, before any kernel starts.

    pip compiles an installed wheel's modules.  An editable checkout is compiled by the first
    process that imports a changed module, and never where ``PYTHONDONTWRITEBYTECODE`` is set
    (as on the CI machine): each kernel would then compile pi-kernel from source as it
    starts, tens of milliseconds no user of the wheel pays, inside every start-up figure."""
    compileall.compile_dir(REPO / "src", quiet=1)


# --------------------------------------------------------------------------------------
# The two sides


def cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    """User plus system CPU these processes have used so far."""
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


@dataclass
class BaselineRun:
    seconds: float
    stdout_bytes: int
    pi_cpu: float


class BaselinePi:
    """Pi as a plain RPC subprocess, read line by line from its stdout."""

    def __init__(
        self,
        install: PiInstall,
        llm: ScriptedLLM,
        pi_env: PiEnv,
        args: Sequence[str] = PI_ARGS,
    ) -> None:
        """``args``: after ``--mode rpc``; the kernel's side must run the same."""
        self.llm = llm
        self.stderr_path = pi_env.cwd.parent / "baseline-stderr.log"
        # stderr goes to a file: nobody drains a pipe while we read stdout, and Pi would block.
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [*install.argv, "--mode", "rpc", *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=pi_env.cwd,
                env=pi_env.env,
                start_new_session=True,
            )
        self._ids = 0
        self.pi_processes = [psutil.Process(self.process.pid)]

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self._ids += 1
        line = json.dumps({"id": f"bench-{self._ids}", **command}).encode() + b"\n"
        self.process.stdin.write(line)
        self.process.stdin.flush()

    def command(self, command: dict[str, Any]) -> dict[str, Any]:
        """Send a short command and return Pi's response to it."""
        self.send(command)
        last = read_until(self.process, "response", COMMAND_TIMEOUT_S).rstrip(b"\n")
        response: dict[str, Any] = json.loads(last.rsplit(b"\n", 1)[-1])
        if not response.get("success"):
            raise RuntimeError(f"Pi refused {command['type']}: {response.get('error')}")
        return response

    def warm_up(self) -> None:
        """Answer get_state (Pi is up), then one short turn, as the kernel side does."""
        state = self.command({"type": "get_state"})["data"]
        if (state.get("model") or {}).get("id") != "plain":
            raise RuntimeError(f"baseline Pi runs model {state.get('model')!r}, not plain")
        self.llm.enqueue(text("Hello."))
        self.send({"type": "prompt", "message": WARM_UP_PROMPT})
        read_until(self.process, "agent_settled", COMMAND_TIMEOUT_S)

    def run(self, reply: Reply, timeout: float) -> BaselineRun:
        self.command({"type": "new_session"})
        self.llm.enqueue(reply)
        cpu = cpu_seconds(self.pi_processes)
        started = time.perf_counter()
        self.send({"type": "prompt", "message": PROMPT})
        data = read_until(self.process, "agent_settled", timeout)
        seconds = time.perf_counter() - started
        if b'"stopReason":"stop"' not in data:
            raise RuntimeError("the baseline turn did not end with stopReason stop")
        return BaselineRun(seconds, len(data), cpu_seconds(self.pi_processes) - cpu)

    def stderr_tail(self) -> str:
        return self.stderr_path.read_bytes()[-2000:].decode("utf-8", "replace")


@contextmanager
def baseline_pi(install: PiInstall, llm: ScriptedLLM, pi_env: PiEnv) -> Iterator[BaselinePi]:
    pi = BaselinePi(install, llm, pi_env)
    try:
        pi.warm_up()
        yield pi
    except BaseException as exc:
        if not isinstance(exc, KeyboardInterrupt) and pi.stderr_tail().strip():
            print(f"baseline Pi stderr (tail):\n{pi.stderr_tail()}", file=sys.stderr)
        raise
    finally:
        stop_process(pi.process)


@dataclass
class MagicRun:
    seconds: float
    display_bytes: int
    final_bytes: int
    display_messages: int
    outputs: int
    kernel_cpu: float
    pi_cpu: float

    @property
    def bytes_ratio(self) -> float:
        return self.display_bytes / self.final_bytes


def checked(run: CellRun, what: str) -> CellRun:
    if run.status != "ok":
        raise RuntimeError(f"{what} failed in the kernel:\n{run.error_text or run.outputs}")
    return run


class MagicKernel:
    """A real kernel with ``pi_magics`` loaded and its Pi warm."""

    def __init__(self, kernel: KernelHarness, llm: ScriptedLLM, install: PiInstall) -> None:
        self.kernel = kernel
        self.llm = llm
        # Configured before loading, so the pre-warmed Pi is already the right one.
        checked(kernel.execute(f"%config PiMagics.pi_path = {str(install.path)!r}"), "%config")
        checked(kernel.execute(f"%config PiMagics.pi_args = {list(PI_ARGS)!r}"), "%config")
        checked(kernel.execute("%load_ext pi_magics"), "%load_ext pi_magics")
        llm.enqueue(text("Hello."))
        checked(kernel.execute(f"%%pi\n{WARM_UP_PROMPT}", timeout=COMMAND_TIMEOUT_S), "warm-up")
        self.status = checked(kernel.execute("%pi status"), "%pi status").text()
        if llm.requests[-1].get("model") != "plain" or "in memory" not in self.status:
            raise RuntimeError(f"the kernel's Pi is not configured as intended:\n{self.status}")
        self.kernel_process = psutil.Process(kernel.pid)
        self.pi_processes = self.kernel_process.children(recursive=True)

    def run(self, reply: Reply, timeout: float) -> MagicRun:
        checked(self.kernel.execute("%pi new"), "%pi new")
        self.llm.enqueue(reply)
        kernel_cpu, pi_cpu = cpu_seconds([self.kernel_process]), cpu_seconds(self.pi_processes)
        run = checked(self.kernel.execute(f"%%pi\n{PROMPT}", timeout=timeout), "%%pi")
        kernel_cpu = cpu_seconds([self.kernel_process]) - kernel_cpu
        pi_cpu = cpu_seconds(self.pi_processes) - pi_cpu
        return MagicRun(
            seconds=run.seconds,
            display_bytes=run.display_bytes,
            final_bytes=sum(len(json.dumps(out["data"])) for out in run.outputs if "data" in out),
            display_messages=sum(m["msg_type"] in DISPLAY_MESSAGES for m in run.messages),
            outputs=len(run.outputs),
            kernel_cpu=kernel_cpu,
            pi_cpu=pi_cpu,
        )

    def profile(self, reply: Reply, timeout: float) -> str:
        """One turn under cProfile in the kernel; the top entries of both threads, as text."""
        checked(self.kernel.execute("%pi new"), "%pi new")
        self.llm.enqueue(reply)
        code = textwrap.dedent(
            f"""\
            import cProfile as _cProfile, io as _io, pstats as _pstats
            _magics = get_ipython().magics_manager.registry["PiMagics"]
            _main, _loop = _cProfile.Profile(), _cProfile.Profile()
            # cProfile hooks the thread that enables it (Python 3.11): one per thread.
            _magics.bridge.portal.call(_loop.enable)
            _main.enable()
            try:
                get_ipython().run_cell_magic("pi", "", {PROMPT!r})
            finally:
                _main.disable()
                _magics.bridge.portal.call(_loop.disable)
            for _name, _profile in (("kernel main thread", _main), ("bridge thread", _loop)):
                _out = _io.StringIO()
                _pstats.Stats(_profile, stream=_out).sort_stats("cumulative").print_stats(
                    {PROFILE_TOP}
                )
                print(f"==== {{_name}} ====\\n{{_out.getvalue().strip()}}\\n")
            """
        )
        run = checked(self.kernel.execute(code, timeout=timeout), "the profiled turn")
        return "".join(
            out["text"]
            for out in run.outputs
            if out["output_type"] == "stream" and out["name"] == "stdout"
        )


@contextmanager
def magic_kernel(install: PiInstall, llm: ScriptedLLM, pi_env: PiEnv) -> Iterator[MagicKernel]:
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
        yield MagicKernel(kernel, llm, install)


# --------------------------------------------------------------------------------------
# Measuring and reporting


@dataclass
class Round:
    baseline: BaselineRun
    magic: MagicRun

    @property
    def ratio(self) -> float:
        return self.magic.seconds / self.baseline.seconds

    def summary(self) -> dict[str, Any]:
        return {
            **{f"baseline_{key}": value for key, value in asdict(self.baseline).items()},
            **{f"magic_{key}": value for key, value in asdict(self.magic).items()},
            "time_ratio": self.ratio,
            "bytes_ratio": self.magic.bytes_ratio,
        }


@dataclass
class Result:
    """One pass: the same answer at one pace, several interleaved rounds."""

    name: str
    rate: float
    """Tokens a second the scripted server streams; 0 for as fast as it can."""
    tokens: int
    answer_chars: int
    rounds: list[Round]

    def median(self, value: Callable[[Round], float]) -> float:
        return statistics.median([value(r) for r in self.rounds])

    @property
    def time_ratio(self) -> float:
        return self.median(lambda r: r.magic.seconds) / self.median(lambda r: r.baseline.seconds)

    @property
    def bytes_ratio(self) -> float:
        return self.median(lambda r: r.magic.bytes_ratio)

    @property
    def time_target_applies(self) -> bool:
        return self.rate > 0

    @property
    def time_met(self) -> bool:
        return self.time_ratio <= TARGET_TIME_RATIO

    @property
    def bytes_met(self) -> bool:
        return self.bytes_ratio <= TARGET_BYTES_RATIO

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rate_tokens_per_second": self.rate or None,
            "baseline_median_seconds": self.median(lambda r: r.baseline.seconds),
            "magic_median_seconds": self.median(lambda r: r.magic.seconds),
            "time_ratio": self.time_ratio,
            "bytes_ratio": self.bytes_ratio,
            "time_target_met": self.time_met if self.time_target_applies else None,
            "bytes_target_met": self.bytes_met,
            "per_round": [r.summary() for r in self.rounds],
        }


def measure(
    baseline: BaselinePi, magic: MagicKernel, reply: Reply, rounds: int, timeout: float
) -> list[Round]:
    results: list[Round] = []
    for index in range(rounds):
        # Alternate which side goes first so drift (thermal, caches) hits both alike.
        if index % 2:
            magic_run = magic.run(reply, timeout)
            base = baseline.run(reply, timeout)
        else:
            base = baseline.run(reply, timeout)
            magic_run = magic.run(reply, timeout)
        results.append(Round(base, magic_run))
        print(
            f"  round {index + 1}/{rounds}: baseline {base.seconds:.2f} s, "
            f"magic {magic_run.seconds:.2f} s, {magic_run.display_messages} display messages",
            flush=True,
        )
    return results


def mark(met: bool) -> str:
    return "met" if met else "**MISSED**"


def markdown_table(results: Sequence[Result]) -> str:
    rows = [
        "| pass | baseline s | `%%pi` s | time ratio (target ≤ 1.10, paced) "
        "| bytes ratio (target ≤ 3.0) | Pi CPU s | kernel CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        verdict = mark(result.time_met) if result.time_target_applies else "worst case"
        rows.append(
            f"| {result.name} | {result.median(lambda r: r.baseline.seconds):.2f} "
            f"| {result.median(lambda r: r.magic.seconds):.2f} "
            f"| {result.time_ratio:.2f}x {verdict} "
            f"| {result.bytes_ratio:.2f}x {mark(result.bytes_met)} "
            f"| {result.median(lambda r: r.baseline.pi_cpu):.2f} "
            f"| {result.median(lambda r: r.magic.kernel_cpu):.2f} |"
        )
    return "\n".join(rows)


def rounds_table(results: Sequence[Result]) -> str:
    rows = [
        "| pass | round | baseline s | Pi stdout MB | magic s | time ratio | display MB "
        "| final KB | bytes ratio | messages | outputs | Pi CPU s (baseline / magic) "
        "| kernel CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for index, r in enumerate(result.rounds, start=1):
            rows.append(
                f"| {result.name} | {index} | {r.baseline.seconds:.2f} "
                f"| {r.baseline.stdout_bytes / 1e6:.1f} | {r.magic.seconds:.2f} "
                f"| {r.ratio:.2f}x | {r.magic.display_bytes / 1e6:.2f} "
                f"| {r.magic.final_bytes / 1e3:.0f} | {r.magic.bytes_ratio:.2f}x "
                f"| {r.magic.display_messages} | {r.magic.outputs} "
                f"| {r.baseline.pi_cpu:.2f} / {r.magic.pi_cpu:.2f} | {r.magic.kernel_cpu:.2f} |"
            )
    return "\n".join(rows)


def machine_info() -> dict[str, Any]:
    return {
        **parse_machine_info(),
        "ipython": IPython.__version__,
        "ipykernel": ipykernel.__version__,
    }


def leftover_processes(roots: Sequence[Path]) -> list[psutil.Process]:
    """Processes still running from these sandboxes (Pi, its tools, the kernel)."""
    found = [process for root in roots for process in processes_of(root)]
    return psutil.wait_procs(found, timeout=EXIT_WAIT_S)[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=100_000, help="answer length in tokens")
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help="tokens a second in the paced pass"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per pass")
    parser.add_argument(
        "--timeout", type=float, default=RUN_TIMEOUT_S, help="seconds per timed turn"
    )
    parser.add_argument(
        "--profile", action="store_true", help="then profile one more turn in the kernel"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    install = locate_pi(CURRENT_PI)
    print(f"Pi: {install.describe()}; {args.tokens} tokens, {args.rounds} rounds", flush=True)
    passes = [
        (f"paced, {args.rate:,.0f} tokens/s", args.rate),
        ("flat out", 0.0),
    ]
    answer_chars = len(answer_text(long_text(args.tokens)))
    results: list[Result] = []
    profile = ""
    roots: list[Path] = []
    with ExitStack() as stack:
        llm, pi_env = stack.enter_context(pi_sandbox("pi-bench-baseline-"))
        roots.append(pi_env.home.parent)
        baseline = stack.enter_context(baseline_pi(install, llm, pi_env))
        llm, pi_env = stack.enter_context(pi_sandbox("pi-bench-kernel-"))
        roots.append(pi_env.home.parent)
        magic = stack.enter_context(magic_kernel(install, llm, pi_env))
        print("warm-up round, flat out (untimed) ...", flush=True)
        baseline.run(long_text(args.tokens), args.timeout)
        magic.run(long_text(args.tokens), args.timeout)
        for name, rate in passes:
            print(f"{name}:", flush=True)
            reply = long_text(args.tokens, rate=rate)
            rounds = measure(baseline, magic, reply, args.rounds, args.timeout)
            results.append(Result(name, rate, args.tokens, answer_chars, rounds))
        if args.profile:
            print("profiling one more flat-out turn in the kernel ...", flush=True)
            profile = magic.profile(long_text(args.tokens), args.timeout)
    leftovers = leftover_processes(roots)

    print()
    print(
        f"%%pi streaming {args.tokens:,} tokens ({answer_chars / 1e3:.0f} KB), "
        f"median of {args.rounds} interleaved rounds per pass"
    )
    print()
    print(markdown_table(results))
    print()
    print(rounds_table(results))
    print()
    missed = False
    for result in results:
        if result.time_target_applies and not result.time_met:
            missed = True
            print(
                f"TARGET MISSED ({result.name}): the magic takes {result.time_ratio:.2f}x the "
                f"time of reading Pi's stdout (target ≤ {TARGET_TIME_RATIO:.2f}x)"
            )
        if not result.bytes_met:
            missed = True
            print(
                f"TARGET MISSED ({result.name}): display messages carry "
                f"{result.bytes_ratio:.2f}x the final output's bytes "
                f"(target ≤ {TARGET_BYTES_RATIO:.1f}x)"
            )
    print("targets missed" if missed else "both targets met")
    if leftovers:
        print(f"warning: {len(leftovers)} process(es) outlived the benchmark: {leftovers}")
    if profile:
        print()
        print(profile)

    report = {
        "machine": machine_info(),
        "pi": {"version": install.version, "path": str(install.path), "args": list(PI_ARGS)},
        "tokens": args.tokens,
        "answer_chars": answer_chars,
        "rounds": args.rounds,
        "target_time_ratio": TARGET_TIME_RATIO,
        "target_bytes_ratio": TARGET_BYTES_RATIO,
        "passes": [result.summary() for result in results],
        "leftover_processes": len(leftovers),
        "profile": profile or None,
        "total_seconds": time.perf_counter() - started,
    }
    return write_report("magic_stream.json", report)


if __name__ == "__main__":
    sys.exit(main())
