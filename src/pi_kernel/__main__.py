"""``python -m pi_kernel``: command-line entry points.

``doctor`` starts the Pi that pi-kernel would use, the way a notebook would, and reports
what it found: which Pi, whether it runs, and which models it offers.  It is the quickest
answer to "why does my notebook say Pi is unavailable?".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence

import anyio

from . import __version__
from .rpc import PiError, locate_pi, open_client
from .session import NO_MODELS_HINT


async def _doctor(pi_path: str | None) -> int:
    install = locate_pi(pi_path)
    print(f"pi-kernel {__version__}")
    print(f"Pi: {install.describe()}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pi-kernel-doctor-") as cwd:
        async with open_client(install, args=("--no-session",), cwd=cwd) as client:
            print(f"Pi answered in {time.monotonic() - started:.1f} s")
            state = await client.get_state()
            models = await client.get_available_models()
    if not models:
        print(f"Pi has no usable models. {NO_MODELS_HINT}")
        return 1
    current = state.model.ref if state.model else None
    print(f"Models ({len(models)}):")
    for model in sorted(models, key=lambda model: model.ref):
        mark = "*" if model.ref == current else " "
        print(f" {mark} {model.ref}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pi_kernel", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="check that Pi runs and list its models")
    doctor.add_argument("--pi", dest="pi_path", help="the Pi executable to check")
    args = parser.parse_args(argv)
    try:
        return anyio.run(_doctor, args.pi_path)
    except PiError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
