"""A kernel tool call's round trip (Pi -> kernel -> Pi) against Pi's own bash tool, same run.

Usage, from the repository root::

    .venv/bin/python bench/kernel_tools.py [--rounds N]

A warm python3 kernel with ``%load_ext pi_magics`` and the pinned Pi, against the scripted
LLM.  Each round is one ``%%pi`` cell whose model calls ``notebook_python`` with ``pass`` and
Pi's ``bash`` with ``true``, one after the other (which goes first alternates), then answers.
Both are timed by Pi itself, the same way: the ``durationMs`` Pi reports around the tool's
execution (kept in the cell's transcript).  For the kernel tool that is the whole way: the
extension's socket request, the hand-over to the running cell, ``run_cell`` on the main
thread, and the reply.  Target: the kernel call at most 1.0x the bash call (a call into a warm
kernel should not be slower than spawning a shell).

This is a benchmark, not a test: it exits 0 when a target is missed, and says so.  Results go
to ``bench/results/kernel_tools.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.magic_stream import leftover_processes, machine_info, pi_sandbox  # noqa: E402
from bench.parse_throughput import CURRENT_PI, write_report  # noqa: E402
from tests.support.kernels import running_kernel  # noqa: E402
from tests.support.scripted_llm import text, tool_calls  # noqa: E402

from pi_kernel.kernel_tools.catalog import PYTHON  # noqa: E402
from pi_kernel.rpc.launch import locate_pi  # noqa: E402
from pi_kernel.transcript import ToolPart, transcripts_in  # noqa: E402

TARGET_RATIO = 1.0
WARM_UP_ROUNDS = 2
CELL_TIMEOUT_S = 60.0


def calls(round_number: int) -> list[Any]:
    kernel = (PYTHON, {"code": "pass"}, f"kernel_{round_number}")
    bash = ("bash", {"command": "true"}, f"bash_{round_number}")
    first, second = (kernel, bash) if round_number % 2 == 0 else (bash, kernel)
    return [tool_calls(first), tool_calls(second), text("Done.")]


def measure(rounds: int) -> dict[str, Any]:
    install = locate_pi(CURRENT_PI)
    kernel_ms: list[float] = []
    bash_ms: list[float] = []
    with (
        pi_sandbox("pi-kernel-bench-tools-") as (llm, pi_env),
        running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel,
    ):
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        for number in range(WARM_UP_ROUNDS + rounds):
            llm.enqueue(*calls(number))
            run = kernel.execute("%%pi --quiet\nCall both tools.", timeout=CELL_TIMEOUT_S)
            assert run.status == "ok", run.outputs
            (transcript,) = transcripts_in(run.outputs)
            durations = {
                part.name: part.duration_ms
                for part in transcript.blocks
                if isinstance(part, ToolPart)
            }
            if None in durations.values():
                raise SystemExit(f"Pi {install.version} reports no tool durations (Pi >= 1)")
            if number >= WARM_UP_ROUNDS:
                kernel_ms.append(float(durations[PYTHON] or 0))
                bash_ms.append(float(durations["bash"] or 0))
        left = leftover_processes([Path(pi_env.cwd).parent])
    kernel_median, bash_median = statistics.median(kernel_ms), statistics.median(bash_ms)
    ratio = kernel_median / bash_median
    return {
        "pi": install.describe(),
        "rounds": rounds,
        "kernel_call_ms": kernel_ms,
        "bash_true_ms": bash_ms,
        "kernel_median_ms": kernel_median,
        "bash_median_ms": bash_median,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "target_met": ratio <= TARGET_RATIO,
        "leftover_processes": len(left),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = measure(args.rounds)
    met = "met" if result["target_met"] else "MISSED"
    print(
        f"kernel tool call / bash `true`: {result['kernel_median_ms']:.1f} ms / "
        f"{result['bash_median_ms']:.1f} ms = {result['ratio']:.2f}x "
        f"(target <= {TARGET_RATIO}x: {met}; {args.rounds} rounds, medians)"
    )
    report = {
        "machine": machine_info(),
        **result,
        "total_seconds": time.perf_counter() - started,
    }
    return write_report("kernel_tools.json", report)


if __name__ == "__main__":
    raise SystemExit(main())
