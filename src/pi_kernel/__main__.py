"""``python -m pi_kernel``: command-line entry points.

``start`` is the main command: JupyterLab with Pi on the tour notebook (``--headless``:
execute the tour and say where the result is), with the local demo model when Pi has no
credentials (see ``pi_kernel.launcher.start``).  ``install`` / ``uninstall`` put the Pi kernel's
kernelspec where Jupyter finds it (options as ``python -m ipykernel install``; ``--pi PATH``
records the Pi the kernel runs).  ``doctor`` starts the Pi that pi-kernel would use, the way a
notebook would, and reports what it found: which Pi and why that one, whether it runs, which
models it offers, and the Pi the installed kernelspec records.  It is the quickest answer to
"why does my notebook say Pi is unavailable?".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
from jupyter_client.kernelspec import NoSuchKernel

from . import __version__
from .agent_dir import no_models_hint
from .errors import PiError, StartError
from .kernel import kernelspec
from .launcher import start
from .rpc import locate_pi, open_client


async def _doctor(pi_path: str | None) -> int:
    print(f"pi-kernel {__version__}")
    _report_kernelspec()
    install = locate_pi(pi_path)
    print(f"Pi: {install.describe()}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pi-kernel-doctor-") as cwd:
        async with open_client(install, args=("--no-session",), cwd=cwd) as client:
            print(f"Pi answered in {time.monotonic() - started:.1f} s")
            state = await client.get_state()
            models = await client.get_available_models()
    if not models:
        print(f"Pi has no usable models. {no_models_hint()}")
        return 1
    current = state.model_ref
    print(f"Models ({len(models)}):")
    for model in sorted(models, key=lambda model: model.ref):
        mark = "*" if model.ref == current else " "
        print(f" {mark} {model.ref}")
    return 0


def _report_kernelspec() -> None:
    """The Pi kernel's kernelspec as Jupyter finds it, and the Pi it records (that one
    wins in the Pi kernel; ``%%pi`` in another kernel finds Pi as below)."""
    found = kernelspec.recorded_pi()
    label = f"Kernelspec {kernelspec.KERNEL_NAME!r}"
    if found is None:
        print(f"{label}: not installed (python -m pi_kernel install)")
        return
    where, pi = found
    if pi is None:
        what = "records no Pi"
    else:
        try:
            what = f"runs {locate_pi(pi).describe(why=False)}"
        except PiError as exc:
            what = f"records a broken Pi: {exc}"
    print(f"{label} at {where}: {what}")


def _install(args: argparse.Namespace) -> int:
    prefix = sys.prefix if args.sys_prefix else args.prefix
    pi = locate_pi(args.pi_path) if args.pi_path else None  # a broken one: nothing installed
    path = kernelspec.install(
        user=args.user, prefix=prefix, name=args.name, display_name=args.display_name, pi=pi
    )
    print(f"Installed kernelspec {args.name} in {path}")
    if pi is not None:
        print(f"It runs {pi.describe(why=False)}")
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    prefix = sys.prefix if args.sys_prefix else args.prefix
    try:
        path = kernelspec.uninstall(name=args.name, prefix=prefix)
    except NoSuchKernel:
        where = f" in {prefix}" if prefix else ""
        print(f"No kernelspec named {args.name!r}{where}: nothing to remove.", file=sys.stderr)
        return 1
    print(f"Removed kernelspec {args.name} from {path}")
    return 0


def _start(args: argparse.Namespace) -> int:
    install = locate_pi(args.pi_path)
    options = start.Options(
        notebook=Path(args.notebook) if args.notebook else None,
        headless=args.headless,
        output=Path(args.output) if args.output else None,
        open_browser=not args.no_browser,
    )
    try:
        return start.run(install, options)
    except StartError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pi_kernel", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="check that Pi runs and list its models")
    doctor.add_argument("--pi", dest="pi_path", help="the Pi executable to check")
    begin = commands.add_parser(
        "start", help="JupyterLab with Pi on the tour notebook (the local model if need be)"
    )
    begin.add_argument("--pi", dest="pi_path", help="the Pi executable to use")
    begin.add_argument(
        "--notebook",
        default=str(start.DEFAULT_NOTEBOOK) if start.DEFAULT_NOTEBOOK else None,
        help="the notebook to open or run (default: the checkout's tour)",
    )
    begin.add_argument(
        "--headless", action="store_true", help="execute the notebook instead of opening Lab"
    )
    begin.add_argument("--output", help="headless: the directory to run the notebook in")
    begin.add_argument("--no-browser", action="store_true", help="do not open a browser")
    install = commands.add_parser("install", help="install the Pi kernel's kernelspec")
    uninstall = commands.add_parser("uninstall", help="remove the Pi kernel's kernelspec")
    for command in (install, uninstall):
        where = command.add_mutually_exclusive_group()
        if command is install:
            where.add_argument("--user", action="store_true", help="for this user only")
        where.add_argument("--sys-prefix", action="store_true", help="in this environment")
        where.add_argument("--prefix", help="under this prefix (PREFIX/share/jupyter/kernels)")
        command.add_argument("--name", default=kernelspec.KERNEL_NAME, help="kernel name")
    install.add_argument(
        "--display-name", default=kernelspec.DISPLAY_NAME, help="name shown in Jupyter"
    )
    install.add_argument(
        "--pi", dest="pi_path", help="the Pi the kernel runs (recorded in the kernelspec)"
    )
    args = parser.parse_args(argv)
    if args.command == "uninstall":
        return _uninstall(args)
    try:
        if args.command == "install":
            return _install(args)
        if args.command == "start":
            return _start(args)
        return anyio.run(_doctor, args.pi_path)
    except PiError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
