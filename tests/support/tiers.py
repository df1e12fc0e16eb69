"""The fast tier's guard: a test left in the fast tier that starts a Pi, a kernel or the main
command fails at once, so ``pytest --fast`` stays what it says (no kernel, no Pi)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest


def starts_pi_or_kernel(argv: Sequence[str]) -> bool:
    """Whether a command line starts a Pi, a Jupyter kernel or server, or the main command."""
    words = [str(word) for word in argv]
    return (
        "--mode" in words  # pi --mode rpc
        or ("-m" in words and "pi_kernel" in words and "start" in words)
        or any(
            (Path(word).name == "pi" and shutil.which(word) is not None)
            or "pi-coding-agent" in word
            or word.endswith(("ipykernel_launcher", "start.sh"))
            or word in ("pi_kernel.kernel", "jupyterlab", "jupyterhub")
            for word in words
        )
    )


def guard_the_fast_tier() -> None:
    """Under ``--fast``, a test that starts a Pi, a kernel or the main command fails at once
    (it belongs in the ``live`` tier: use a live fixture or mark it), so the fast tier stays
    what it says.  Set for the whole session, so class-level set-ups are guarded too."""
    start = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[bytes], args: Any, *rest: Any, **kw: Any) -> None:
        argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
        if starts_pi_or_kernel([os.fsdecode(word) for word in argv]):
            pytest.fail(f"a fast-tier test started a Pi or a kernel: {argv}; mark it live")
        start(self, args, *rest, **kw)

    subprocess.Popen.__init__ = guarded  # type: ignore[method-assign]
