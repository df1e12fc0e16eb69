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

Then each Pi notebook is left idle with ``PiMagics.idle_stop = 1``: once its Pi has stopped,
the notebook (the kernel and whatever runs under it) is measured again, against the kernel's
own RSS while Pi was awake — target: within 10%, an idle notebook costs only its kernel.  And
the first cell after sleeping (Pi started again on its session) is timed beside a warm cell,
as a figure.

The open-notebook figure has no target: it sizes servers.  Results go to
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
IDLE_TARGET_RATIO = 1.10
SLEEP_WAIT_S = 30.0


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
        for kernel, row in zip(kernels, pi_kernels, strict=True):
            row["idle_rss"], _ = asleep(kernel)
        wake, warm = after_sleep(kernels[0], llm)
        root = Path(pi_env.cwd).parent
    left = leftover_processes([root])

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    idle = median(pi_kernels, "idle_rss") / median(pi_kernels, "kernel_rss")
    return {
        "pi": install.describe(),
        "idle": {
            "idle_median_mb": median(pi_kernels, "idle_rss"),
            "awake_kernel_median_mb": median(pi_kernels, "kernel_rss"),
            "ratio": idle,
            "target_ratio": IDLE_TARGET_RATIO,
            "target_met": idle <= IDLE_TARGET_RATIO,
            "first_after_sleep_seconds": wake,
            "warm_seconds": warm,
        },
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


def asleep(kernel: KernelHarness) -> tuple[float, float]:
    """The notebook's RSS and PSS (the kernel and all under it) once its idle Pi stopped."""
    assert kernel.execute("%config PiMagics.idle_stop = 1").status == "ok"
    deadline = time.monotonic() + SLEEP_WAIT_S
    while kernel.pis():
        if time.monotonic() > deadline:
            raise RuntimeError("Pi did not stop after idle_stop")
        time.sleep(0.1)
    assert kernel.execute("%config PiMagics.idle_stop = 0").status == "ok"
    time.sleep(SETTLE_S)
    process = psutil.Process(kernel.pid)
    return footprint([process, *process.children(recursive=True)])


def after_sleep(kernel: KernelHarness, llm: Any) -> tuple[float, float]:
    """Seconds of the first cell after sleeping (Pi started again), then of a warm cell."""
    times = []
    for prompt in ("Awake?", "Still there?"):
        llm.enqueue(text("Yes."))
        started = time.perf_counter()
        assert kernel.execute(prompt).status == "ok"
        times.append(time.perf_counter() - started)
    return times[0], times[1]


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
    idle = result["idle"]
    print(
        f"an idle notebook after idle_stop: {idle['idle_median_mb']:.0f} MB RSS against its "
        f"kernel's {idle['awake_kernel_median_mb']:.0f} MB awake = {idle['ratio']:.2f}x; first "
        f"cell after sleeping {idle['first_after_sleep_seconds']:.2f} s, warm "
        f"{idle['warm_seconds']:.2f} s"
    )
    report = {"machine": machine_info(), **result, "total_seconds": time.perf_counter() - started}
    return write_report("notebook_memory.json", report)


if __name__ == "__main__":
    raise SystemExit(main())
