"""The performance table: every benchmark, one after the other, then one table of the targets.

Usage, from the repository root::

    .venv/bin/python bench/table.py [--quick]

Runs ``bench/kernel_life.py`` (first cell vs warm cells, kernel RSS over 200 turns),
``bench/latency.py`` (time to the first answer text, and a cold first cell, against Pi alone),
``bench/magic_stream.py`` (``%%pi`` against reading Pi's stdout for a 100 000-token answer,
and the frontend bytes it sends) and ``bench/parse_throughput.py`` (the RPC client's parse
against ``json.loads``), ``bench/kernel_tools.py`` (a kernel tool call against Pi's bash
running ``true``) and ``bench/notebook_memory.py`` (an open Pi notebook's kernel and Pi beside
a python3 notebook's kernel; a figure, no target), each measuring its sides in the same run;
then prints the table the README shows and writes ``bench/results/table.json``.  ``--quick``
runs fewer rounds and turns (a smoke run, not figures to publish).  Nothing else should run on
the machine meanwhile: the figures are ratios, but two cores are easily disturbed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import (  # noqa: E402
    kernel_life,
    kernel_tools,
    latency,
    magic_stream,
    notebook_memory,
    parse_throughput,
)
from bench.parse_throughput import RESULTS, write_report  # noqa: E402


def row(measure: str, value: str, target: str, met: bool | None) -> dict[str, Any]:
    """``met`` None: a figure without a target."""
    return {"measure": measure, "value": value, "target": target, "met": met}


def rows() -> list[dict[str, Any]]:
    life = json.loads((RESULTS / "kernel_life.json").read_text())
    latency = json.loads((RESULTS / "latency.json").read_text())
    token, cold = latency["first_token"], latency["cold_first_cell"]
    stream = json.loads((RESULTS / "magic_stream.json").read_text())
    parse = json.loads((RESULTS / "parse_throughput.json").read_text())
    tools = json.loads((RESULTS / "kernel_tools.json").read_text())
    notebook = json.loads((RESULTS / "notebook_memory.json").read_text())
    pi_mb, python_mb = notebook["median_mb"], notebook["python_median_mb"]
    idle = notebook["idle"]
    first, memory = life["first_cell"], life["memory"]
    paced = next(p for p in stream["passes"] if p["rate_tokens_per_second"])
    flat = next(p for p in stream["passes"] if not p["rate_tokens_per_second"])
    current = next(s for s in parse["streams"] if s["key"] == "current")
    tokens = f"{stream['tokens']:,}"
    return [
        row(
            f"first cell / warm cell (fresh kernel, {life['think_seconds']:g} s after load)",
            f"{first['first_median_seconds'] * 1e3:.0f} ms / "
            f"{first['warm_median_seconds'] * 1e3:.0f} ms = {first['ratio']:.2f}x (Pi alone: "
            f"{first['pi_first_median_seconds'] * 1e3:.0f} ms / "
            f"{first['pi_warm_median_seconds'] * 1e3:.0f} ms = {first['pi_ratio']:.2f}x; "
            f"the kernel's own extra: {first['kernel_extra_seconds'] * 1e3:+.0f} ms)",
            f"the kernel's own extra ≤ {first['target_kernel_extra_seconds'] * 1e3:g} ms",
            first["target_met"],
        ),
        row(
            "first answer text: execute request → cell / `prompt` → Pi's first `text_delta`",
            f"{token['cell_median_seconds'] * 1e3:.0f} ms / "
            f"{token['pi_median_seconds'] * 1e3:.0f} ms = {token['ratio']:.2f}x",
            f"≤ {token['target_ratio']:g}x",
            token["target_met"],
        ),
        row(
            "cold first cell: new Pi kernel + a prompt at once / a python3 kernel and a raw Pi "
            "started together, the prompt sent to Pi when the kernel answers",
            f"{cold['cell_median_seconds']:.2f} s / {cold['pi_median_seconds']:.2f} s "
            f"= {cold['ratio']:.2f}x (against the slower part alone, python3 ready "
            f"{cold['python_ready_median_seconds']:.2f} s or Pi prompted "
            f"{cold['raw_pi_median_seconds']:.2f} s: {cold['parts_ratio']:.2f}x; the limit "
            f"itself: {cold['limit_over_parts']:.2f}x)",
            f"≤ {cold['target_ratio']:g}x",
            cold["target_met"],
        ),
        row(
            f"`%%pi` / Pi's stdout, {tokens}-token answer at "
            f"{paced['rate_tokens_per_second']:,.0f} tokens/s",
            f"{paced['magic_median_seconds']:.2f} s / {paced['baseline_median_seconds']:.2f} s "
            f"= {paced['time_ratio']:.2f}x (flat out: {flat['time_ratio']:.2f}x)",
            f"≤ {stream['target_time_ratio']:.2f}x",
            paced["time_target_met"],
        ),
        row(
            "frontend bytes / final output bytes, that answer",
            f"{paced['bytes_ratio']:.2f}x (flat out: {flat['bytes_ratio']:.2f}x)",
            f"≤ {stream['target_bytes_ratio']:g}x",
            paced["bytes_target_met"] and flat["bytes_target_met"],
        ),
        row(
            f"client parse / `json.loads`, Pi {current['pi_version']} stream "
            f"({current['megabytes']:.1f} MB)",
            f"{current['ratio']:.2f}x",
            f"≤ {parse['target_ratio']:g}x",
            current["ratio"] <= parse["target_ratio"],
        ),
        row(
            "kernel tool call (Pi → kernel → Pi) / Pi's bash running `true`, same run",
            f"{tools['kernel_median_ms']:.0f} ms / {tools['bash_median_ms']:.0f} ms "
            f"= {tools['ratio']:.2f}x (as Pi times its tools)",
            f"≤ {tools['target_ratio']:g}x",
            tools["target_met"],
        ),
        row(
            f"kernel RSS growth over {memory['turns']} turns",
            f"{memory['kernel_growth_mb']:+.1f} MB ({memory['kernel_warm_mb']:.0f} → "
            f"{memory['kernel_end_mb']:.0f} MB; one Pi, {memory['pi_warm_mb']:.0f} → "
            f"{memory['pi_end_mb']:.0f} MB)",
            f"< {memory['target_growth_mb']:g} MB",
            memory["target_met"],
        ),
        row(
            f"memory per open Pi notebook ({notebook['notebooks']} open), kernel + Pi / "
            "a python3 notebook's kernel",
            f"{pi_mb['rss']:.0f} MB RSS (kernel {pi_mb['kernel_rss']:.0f} + Pi "
            f"{pi_mb['pi_rss']:.0f}), {pi_mb['pss']:.0f} MB PSS / {python_mb['rss']:.0f} MB "
            f"RSS, {python_mb['pss']:.0f} MB PSS",
            "(a figure for sizing servers)",
            None,
        ),
        row(
            "an idle Pi notebook after `idle_stop` (kernel and all under it) / its kernel "
            "while Pi was awake",
            f"{idle['idle_median_mb']:.0f} MB / {idle['awake_kernel_median_mb']:.0f} MB RSS "
            f"= {idle['ratio']:.2f}x",
            f"≤ {idle['target_ratio']:g}x",
            idle["target_met"],
        ),
        row(
            "first cell after sleeping (Pi started again on its session) / a warm cell",
            f"{idle['first_after_sleep_seconds'] * 1e3:.0f} ms / "
            f"{idle['warm_seconds'] * 1e3:.0f} ms",
            "(a figure)",
            None,
        ),
    ]


def markdown(table: Sequence[dict[str, Any]]) -> str:
    lines = ["| measure | value | target | |", "|---|---|---|---|"]
    for entry in table:
        met = {True: "met", False: "**missed**", None: "—"}[entry["met"]]
        lines.append(f"| {entry['measure']} | {entry['value']} | {entry['target']} | {met} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    quick = args.quick
    kernel_life.main(["--rounds", "2", "--turns", "40"] if quick else [])
    latency.main(["--rounds", "2"] if quick else [])
    magic_stream.main(["--rounds", "1", "--tokens", "20000"] if quick else ["--rounds", "3"])
    parse_throughput.main(["--rounds", "2"] if quick else [])
    kernel_tools.main(["--rounds", "4"] if quick else [])
    notebook_memory.main(["--notebooks", "2"] if quick else [])
    table = rows()
    machine = magic_stream.machine_info()
    print()
    print(
        f"Performance table ({machine['cpu_count']} cores, {machine['platform']}, "
        f"Python {machine['python']}{', quick run' if quick else ''})"
    )
    print()
    print(markdown(table))
    report = {
        "machine": machine,
        "quick": quick,
        "rows": table,
        "all_met": all(entry["met"] is not False for entry in table),
        "total_seconds": time.perf_counter() - started,
    }
    return write_report("table.json", report)


if __name__ == "__main__":
    sys.exit(main())
