"""Finding what a test started (Pi, its tools, kernels) and making sure none of it outlives
the test."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

PROCESS_EXIT_TIMEOUT = 5.0
"""Seconds a Pi may take to disappear after its test ended before the test fails."""


def processes_of(root: Path) -> list[psutil.Process]:
    """Every process whose Pi agent dir lies under ``root``: Pi, its tools, test kernels.

    Matched by environment, not command line: Pi renames its process to ``pi``.
    """
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            agent_dir = process.environ().get("PI_CODING_AGENT_DIR", "")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if agent_dir.startswith(str(root)):
            found.append(process)
    return found


def is_pi(process: psutil.Process) -> bool:
    try:
        cmdline = process.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return bool(cmdline) and (cmdline[0] == "pi" or "rpc" in cmdline)


def assert_none_left(root: Path, *, spare: int | None = None) -> None:
    """Fail if a process whose agent dir lies under ``root`` is still running (after a
    grace period); kill what is.  ``spare`` is a pid meant to outlive this check."""
    leftovers = [process for process in processes_of(root) if process.pid != spare]
    if not leftovers:
        return
    _, alive = psutil.wait_procs(leftovers, timeout=PROCESS_EXIT_TIMEOUT)
    # A zombie has exited; only its parent (a Jupyter server, say) has yet to reap it.
    alive = [process for process in alive if not _zombie(process)]
    for process in alive:
        process.kill()
    assert not alive, f"processes left running: {[(p.pid, p.name()) for p in alive]}"


def _zombie(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
