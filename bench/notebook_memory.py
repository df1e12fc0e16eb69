"""Memory per open Pi notebook (kernel + Pi), beside a python3 notebook's kernel: the figure
the deployment guide sizes servers with.

Usage, from the repository root::

    .venv/bin/python bench/notebook_memory.py [--notebooks N]

``--notebooks`` Pi kernels (default 3) are open at once, as a user with several notebooks has
them, each after two short prompts answered by the scripted LLM (the pinned Pi, its kernelspec
installed under a temporary prefix); beside them, as many python3 kernels that ran ``1 + 1``.
For each kernel: its RSS and PSS, and those of its Pi (node).  RSS counts shared pages in every
process (what ``top`` and most dashboards show); PSS shares them out (what N notebooks really
add up to).  The medians per notebook are reported; the Jupyter server itself is not counted.

This is a benchmark, not a test: it has no target, it measures.  Results go to
``bench/results/notebook_memory.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
from bench.magic_stream import leftover_processes, machine_info, pi_sandbox  # noqa: E402
from bench.parse_throughput import CURRENT_PI, write_report  # noqa: E402
from tests.support.kernels import KernelHarness, install_pi_kernelspec, running_kernel  # noqa: E402
from tests.support.scripted_llm import text  # noqa: E402

from pi_kernel.rpc.launch import locate_pi  # noqa: E402

MB = 1024 * 1024
SETTLE_S = 2.0
"""Seconds after the last cell before reading memory (Pi's answer handling, garbage)."""


def footprint(processes: Sequence[psutil.Process]) -> tuple[float, float]:
    """RSS and PSS of these processes together, in MB."""
    rss = pss = 0
    for process in processes:
        info = process.memory_full_info()
        rss, pss = rss + info.rss, pss + info.pss
    return rss / MB, pss / MB


def measure(notebooks: int) -> dict[str, Any]:
    install = locate_pi(CURRENT_PI)
    pi_kernels: list[dict[str, float]] = []
    python_kernels: list[dict[str, float]] = []
    with (
        pi_sandbox("pi-kernel-bench-memory-") as (llm, pi_env),
        tempfile.TemporaryDirectory(prefix="pi-kernel-bench-spec-") as prefix,
        contextlib.ExitStack() as open_kernels,
    ):
        os.environ["JUPYTER_PATH"] = install_pi_kernelspec(Path(prefix))
        kernels: list[KernelHarness] = []
        for _ in range(notebooks):
            kernel = open_kernels.enter_context(
                running_kernel(env=pi_env.env, cwd=pi_env.cwd, kernel_name="pi")
            )
            for prompt in ("Say hello.", "Say it again."):
                llm.enqueue(text("Hello."))
                assert kernel.execute(prompt).status == "ok"
            kernels.append(kernel)
        plain: list[KernelHarness] = []
        for _ in range(notebooks):
            kernel = open_kernels.enter_context(running_kernel(env=pi_env.env, cwd=pi_env.cwd))
            assert kernel.execute("1 + 1").status == "ok"
            plain.append(kernel)
        time.sleep(SETTLE_S)
        for kernel in kernels:
            (pi,) = kernel.pis()
            kernel_rss, kernel_pss = footprint([psutil.Process(kernel.pid)])
            pi_rss, pi_pss = footprint([pi, *pi.children(recursive=True)])
            pi_kernels.append(
                {"kernel_rss": kernel_rss, "kernel_pss": kernel_pss, "pi_rss": pi_rss}
                | {"pi_pss": pi_pss, "rss": kernel_rss + pi_rss, "pss": kernel_pss + pi_pss}
            )
        for kernel in plain:
            rss, pss = footprint([psutil.Process(kernel.pid)])
            python_kernels.append({"rss": rss, "pss": pss})
        root = Path(pi_env.cwd).parent
    left = leftover_processes([root])

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    return {
        "pi": install.describe(),
        "notebooks": notebooks,
        "pi_notebooks": pi_kernels,
        "python_notebooks": python_kernels,
        "median_mb": {
            key: median(pi_kernels, key)
            for key in ("kernel_rss", "pi_rss", "rss", "kernel_pss", "pi_pss", "pss")
        },
        "python_median_mb": {key: median(python_kernels, key) for key in ("rss", "pss")},
        "leftover_processes": len(left),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=int, default=3)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = measure(args.notebooks)
    pi, python = result["median_mb"], result["python_median_mb"]
    print(
        f"per open Pi notebook: {pi['rss']:.0f} MB RSS (kernel {pi['kernel_rss']:.0f} + Pi "
        f"{pi['pi_rss']:.0f}), {pi['pss']:.0f} MB PSS; a python3 notebook's kernel: "
        f"{python['rss']:.0f} MB RSS, {python['pss']:.0f} MB PSS ({args.notebooks} of each open)"
    )
    report = {"machine": machine_info(), **result, "total_seconds": time.perf_counter() - started}
    return write_report("notebook_memory.json", report)


if __name__ == "__main__":
    raise SystemExit(main())
