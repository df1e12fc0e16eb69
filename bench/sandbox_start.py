"""Pi's start inside the sandbox against its start outside, same run.

Usage, from the repository root::

    .venv/bin/python bench/sandbox_start.py [--rounds N]

The pinned Pi started by a ``PiSupervisor`` until its first RPC answer, alternately without
and with ``Sandbox()`` (bubblewrap: the trial run, the namespaces, the mounts), in a fresh
agent dir each time; the medians compared.  Target: sandboxed at most 1.2x the plain start
(confinement should not make the first cell noticeably slower).  Needs ``bwrap``.

This is a benchmark, not a test: it exits 0 when a target is missed, and says so.  Results go
to ``bench/results/sandbox_start.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.parse_throughput import CURRENT_PI, machine_info, write_report  # noqa: E402

from pi_kernel.rpc.launch import locate_pi  # noqa: E402
from pi_kernel.sandbox import Sandbox  # noqa: E402
from pi_kernel.supervisor import PiSupervisor  # noqa: E402

TARGET_RATIO = 1.2
WARM_UP_ROUNDS = 1


async def start_seconds(sandbox: Sandbox | None) -> float:
    """Seconds from asking for Pi to its first answer (``client()``), then stopped."""
    with tempfile.TemporaryDirectory(prefix="pi-kernel-bench-sandbox-") as folder:
        env = {**os.environ, "PI_CODING_AGENT_DIR": folder, "PI_OFFLINE": "1"}
        async with PiSupervisor(
            pi_path=str(CURRENT_PI), cwd=folder, env=env, sandbox=sandbox
        ) as pi:
            started = time.perf_counter()
            await pi.client()
            seconds = time.perf_counter() - started
            await pi.stop()
    return seconds


async def measure(rounds: int) -> dict[str, Any]:
    plain: list[float] = []
    sandboxed: list[float] = []
    for number in range(WARM_UP_ROUNDS + rounds):
        # Alternated, so that a busy moment of the machine falls on both sides.
        outside, inside = await start_seconds(None), await start_seconds(Sandbox())
        if number >= WARM_UP_ROUNDS:
            plain.append(outside)
            sandboxed.append(inside)
    plain_median, sandboxed_median = statistics.median(plain), statistics.median(sandboxed)
    ratio = sandboxed_median / plain_median
    return {
        "pi": locate_pi(CURRENT_PI).describe(),
        "rounds": rounds,
        "plain_s": plain,
        "sandboxed_s": sandboxed,
        "plain_median_s": plain_median,
        "sandboxed_median_s": sandboxed_median,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "target_met": ratio <= TARGET_RATIO,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    if shutil.which("bwrap") is None:
        print("bubblewrap (`bwrap`) is not installed: nothing to measure.")
        return 0
    started = time.perf_counter()
    result = anyio.run(measure, args.rounds)
    met = "met" if result["target_met"] else "MISSED"
    print(
        f"Pi's start sandboxed / plain: {result['sandboxed_median_s']:.2f} s / "
        f"{result['plain_median_s']:.2f} s = {result['ratio']:.2f}x "
        f"(target <= {TARGET_RATIO}x: {met}; {args.rounds} rounds, medians)"
    )
    report = {"machine": machine_info(), **result, "total_seconds": time.perf_counter() - started}
    return write_report("sandbox_start.json", report)


if __name__ == "__main__":
    raise SystemExit(main())
