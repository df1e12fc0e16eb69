"""Stopping what we started, for certain: process groups, and strays found by a marker.

Every process started here gets its own session (and so its own process group), and an
environment variable whose value is unique to the starter; every process below it inherits
that variable, even those that detach into groups of their own (Pi's tools, kernels under a
Jupyter server).  Stopping is then: ask the group to stop, wait a bounded time, kill the
group, and finally kill whatever still carries the marker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from contextlib import suppress

TERM_GRACE = 10.0
"""Seconds a Jupyter server or the model server gets to shut down its children after SIGTERM."""
KILL_GRACE = 2.0
"""Seconds for SIGKILL to take effect (the kernel only has to reap the process)."""

Escalation = tuple[tuple[signal.Signals, float], ...]


def escalation(term_grace: float) -> Escalation:
    """How a process group is stopped: each signal, and how long the leader then gets to
    exit before the next.  Whatever happens, the group gets a last SIGKILL (``finish_group``)."""
    return ((signal.SIGTERM, term_grace), (signal.SIGKILL, KILL_GRACE))


def new_marker() -> str:
    """A marker value no other starter has: this process's pid and a random part."""
    return f"{os.getpid()}-{uuid.uuid4().hex}"


def kill_marked(variable: str, value: str) -> None:
    """SIGKILL every process whose environment has ``variable=value`` (Linux ``/proc``;
    elsewhere nothing is found, and the processes' own clean exit is all we have)."""
    needle = f"{variable}={value}".encode() + b"\0"
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if needle in handle.read():
                    os.kill(pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue  # gone meanwhile, or not ours to read


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a process group, if it still exists."""
    # The group id is its leader's pid; Linux does not reuse a pid while a group of that id
    # exists.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def finish_group(pgid: int) -> None:
    """The last step of every stop: children that stayed in the group may outlive a leader
    that exited cleanly.  Detached children are not in it: ``kill_marked`` finds those."""
    signal_group(pgid, signal.SIGKILL)


def stop_group(process: subprocess.Popen[bytes], *, grace: float = TERM_GRACE) -> int | None:
    """Stop the group ``process`` leads by ``escalation(grace)``; return the exit code.
    (``PiTransport`` follows the same steps, awaiting.)

    ``process`` must have been started with ``start_new_session=True``.
    """
    for sig, wait in escalation(grace):
        if process.poll() is not None:
            break
        signal_group(process.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            process.wait(wait)
    finish_group(process.pid)
    return process.returncode
