"""A kernel's life with ``%%pi``: the first cell against warm ones, and memory over many turns.

Usage, from the repository root::

    .venv/bin/python bench/kernel_life.py [--rounds N] [--turns N]

Against the scripted LLM of the test suite and the pinned Pi, in real IPython kernels
(``tests.support.kernels``), every cell a short ``%%pi`` answer:

* **first cell**: a fresh kernel loads the extension (which starts Pi in the background),
  the user waits ``--think`` seconds (default 2), then runs a cell; timed from the execute
  request to the kernel going idle.  Then, in the same kernel, the same cell again several
  times: the warm cells.  ``--rounds`` fresh kernels (default 5); the medians are compared.
  The same is measured with Pi alone (an RPC subprocess: started, ``--think`` s, then the
  same prompts): Pi's own first turn is slower than its later ones (its first-request
  warm-up), and what the kernel adds to a first cell beyond any cell is the difference of
  the two differences.  Target: that extra at most 10 ms (the ratio first/warm is Pi's);
* **memory**: one kernel runs ``--turns`` cells (default 200); the kernel's RSS after a
  warm-up of 10 turns and at the end, target growth under 30 MB.  Pi's RSS and its process
  count are reported beside it (one Pi throughout).

This is a benchmark, not a test: it exits 0 when a target is missed, and says so.
Results go to ``bench/results/kernel_life.json`` (git-ignored).
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

import psutil  # noqa: E402
from bench.magic_stream import (  # noqa: E402
    BaselinePi,
    leftover_processes,
    machine_info,
    pi_sandbox,
)
from bench.parse_throughput import CURRENT_PI, write_report  # noqa: E402
from bench.parse_throughput import _read_until as read_until  # noqa: E402
from bench.parse_throughput import _stop_process as stop_process  # noqa: E402
from tests.support.kernels import CellRun, KernelHarness, running_kernel  # noqa: E402
from tests.support.scripted_llm import text  # noqa: E402

from pi_kernel.rpc.launch import locate_pi  # noqa: E402

TARGET_KERNEL_EXTRA_SECONDS = 0.010
"""What the kernel may add to a first cell beyond what it adds to any cell."""
TARGET_RSS_GROWTH_MB = 30.0
WARM_CELLS = 5
"""Warm cells timed after each first cell."""
WARM_UP_TURNS = 10
"""Turns before the memory baseline is read (imports, caches, Pi's first answers)."""
CELL = "%%pi\nSay hello."
ANSWER = "Hello! This is a short answer of a dozen words or so, as most are."
CELL_TIMEOUT_S = 60.0


def timed(kernel: KernelHarness, code: str) -> float:
    run: CellRun = kernel.execute(code, timeout=CELL_TIMEOUT_S)
    if run.status != "ok" or ANSWER not in run.text("text/markdown"):
        raise RuntimeError(f"the cell failed: {run.error_text or run.outputs}")
    return run.seconds


def first_and_warm(think: float) -> tuple[float, list[float], Path]:
    """One fresh kernel: the first cell after ``think`` s, then the warm cells."""
    with pi_sandbox("pi-bench-first-") as (llm, pi_env):
        llm.enqueue(*(text(ANSWER) for _ in range(1 + WARM_CELLS)))
        with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
            loaded = kernel.execute("%load_ext pi_magics")
            if loaded.status != "ok":
                raise RuntimeError(f"%load_ext failed: {loaded.error_text}")
            time.sleep(think)
            first = timed(kernel, CELL)
            warm = [timed(kernel, CELL) for _ in range(WARM_CELLS)]
        return first, warm, pi_env.home.parent


def pi_first_and_warm(think: float) -> tuple[float, list[float], Path]:
    """The same with Pi alone, as a plain RPC subprocess: is a first turn slow in Pi?"""
    with pi_sandbox("pi-bench-first-pi-") as (llm, pi_env):
        llm.enqueue(*(text(ANSWER) for _ in range(1 + WARM_CELLS)))
        pi = BaselinePi(locate_pi(CURRENT_PI), llm, pi_env)
        try:
            pi.command({"type": "get_state"})  # Pi is up, as after the extension's prewarm
            time.sleep(think)
            seconds = []
            for _ in range(1 + WARM_CELLS):
                started = time.perf_counter()
                pi.send({"type": "prompt", "message": "Say hello."})
                read_until(pi.process, "agent_settled", CELL_TIMEOUT_S)
                seconds.append(time.perf_counter() - started)
        finally:
            stop_process(pi.process)
        return seconds[0], seconds[1:], pi_env.home.parent


def rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / 1e6


def memory_over(turns: int) -> tuple[dict[str, Any], Path]:
    with pi_sandbox("pi-bench-rss-") as (llm, pi_env):
        llm.enqueue(*(text(ANSWER) for _ in range(turns)))
        with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
            kernel.execute("%load_ext pi_magics")
            kernel_process = psutil.Process(kernel.pid)
            pis: set[int] = set()
            samples: dict[str, float] = {}
            for turn in range(1, turns + 1):
                timed(kernel, CELL)
                running = kernel.pis()
                pis.update(process.pid for process in running)
                if turn in (WARM_UP_TURNS, turns):
                    when = "warm" if turn == WARM_UP_TURNS else "end"
                    samples[f"kernel_{when}_mb"] = rss_mb(kernel_process)
                    samples[f"pi_{when}_mb"] = sum(rss_mb(p) for p in running)
        result = {
            "turns": turns,
            **samples,
            "kernel_growth_mb": samples["kernel_end_mb"] - samples["kernel_warm_mb"],
            "pi_growth_mb": samples["pi_end_mb"] - samples["pi_warm_mb"],
            "pi_processes": len(pis),
        }
        return result, pi_env.home.parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh kernels for the first cell")
    parser.add_argument("--turns", type=int, default=200, help="turns for the memory pass")
    parser.add_argument("--think", type=float, default=2.0, help="seconds before the first cell")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    roots: list[Path] = []

    firsts: list[float] = []
    warms: list[float] = []
    for round_number in range(1, args.rounds + 1):
        first, warm, root = first_and_warm(args.think)
        roots.append(root)
        firsts.append(first)
        warms.extend(warm)
        warm_median = statistics.median(warm)
        print(f"round {round_number}: first {first:.3f} s, warm median {warm_median:.3f} s")
    first_median, warm_median = statistics.median(firsts), statistics.median(warms)
    first_ratio = first_median / warm_median
    pi_firsts: list[float] = []
    pi_warms: list[float] = []
    for _ in range(args.rounds):
        first, warm, root = pi_first_and_warm(args.think)
        roots.append(root)
        pi_firsts.append(first)
        pi_warms.extend(warm)
    pi_first, pi_warm = statistics.median(pi_firsts), statistics.median(pi_warms)
    print(f"Pi alone: first {pi_first:.3f} s, warm median {pi_warm:.3f} s")
    # What the kernel adds to a first cell beyond what it adds to any cell.
    kernel_extra = (first_median - warm_median) - (pi_first - pi_warm)
    print(f"memory over {args.turns} turns ...", flush=True)
    memory, root = memory_over(args.turns)
    roots.append(root)
    leftovers = leftover_processes(roots)

    first_met = kernel_extra <= TARGET_KERNEL_EXTRA_SECONDS
    rss_met = memory["kernel_growth_mb"] < TARGET_RSS_GROWTH_MB
    print()
    print("| measure | value | target | |")
    print("|---|---|---|---|")
    print(
        f"| first cell / warm cell (fresh kernel, {args.think:g} s after load) | "
        f"{first_median:.3f} s / {warm_median:.3f} s = {first_ratio:.2f}x | | |"
    )
    print(
        f"| the same, Pi alone (RPC subprocess) | {pi_first:.3f} s / {pi_warm:.3f} s = "
        f"{pi_first / pi_warm:.2f}x | | |"
    )
    print(
        f"| the kernel's own extra on a first cell | {kernel_extra * 1e3:+.0f} ms | ≤ "
        f"{TARGET_KERNEL_EXTRA_SECONDS * 1e3:g} ms | {'met' if first_met else '**MISSED**'} |"
    )
    print(
        f"| kernel RSS growth over {args.turns} turns | {memory['kernel_growth_mb']:+.1f} MB "
        f"({memory['kernel_warm_mb']:.0f} → {memory['kernel_end_mb']:.0f} MB; Pi "
        f"{memory['pi_warm_mb']:.0f} → {memory['pi_end_mb']:.0f} MB, "
        f"{memory['pi_processes']} process) | < {TARGET_RSS_GROWTH_MB:g} MB | "
        f"{'met' if rss_met else '**MISSED**'} |"
    )
    if leftovers:
        print(f"warning: {len(leftovers)} process(es) outlived the benchmark: {leftovers}")
    report = {
        "machine": machine_info(),
        "think_seconds": args.think,
        "first_cell": {
            "first_seconds": firsts,
            "warm_seconds": warms,
            "first_median_seconds": first_median,
            "warm_median_seconds": warm_median,
            "ratio": first_ratio,
            "target_kernel_extra_seconds": TARGET_KERNEL_EXTRA_SECONDS,
            "target_met": first_met,
            "pi_first_seconds": pi_firsts,
            "pi_warm_seconds": pi_warms,
            "pi_first_median_seconds": pi_first,
            "pi_warm_median_seconds": pi_warm,
            "pi_ratio": pi_first / pi_warm,
            "kernel_extra_seconds": kernel_extra,
        },
        "memory": {**memory, "target_growth_mb": TARGET_RSS_GROWTH_MB, "target_met": rss_met},
        "leftover_processes": len(leftovers),
        "total_seconds": time.perf_counter() - started,
    }
    return write_report("kernel_life.json", report)


if __name__ == "__main__":
    sys.exit(main())
