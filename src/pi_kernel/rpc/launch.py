"""Finding Pi, and the command line that really starts it.

Order (the first that is set wins, and a set one that is broken is an error, never a silent
fallback to something else):

1. an explicit path from the caller (the ``PiMagics.pi_path`` setting, ``--pi``),
2. the ``PI_KERNEL_PI_PATH`` environment variable (which ``python -m pi_kernel install --pi``
   records in the kernelspec, so the Pi kernel of a wheel install finds the Pi it was given),
3. the project-local install made by ``npm ci`` in the checkout, when this package is
   installed from one (editable); an installed wheel has no checkout,
4. ``pi`` on ``PATH``.

Pi's launcher is a Node script (``#!/usr/bin/env node``).  Pi 0.87 needs Node >= 22.19, and
the machine's ``node`` may be older, so a script is started as ``<node> <script>`` with the
Node that was installed beside it (``node_modules/.bin/node`` from the ``node@22`` package)
when there is one.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import variables
from .errors import PiExited, PiNotFound

PI_PACKAGES = ("@earendil-works/pi-coding-agent", "@mariozechner/pi-coding-agent")
"""npm packages that ship Pi, newest name first."""


def _checkout() -> Path | None:
    """The source checkout this module runs from (an editable install), else None.

    A wheel puts this file in ``site-packages/pi_kernel/rpc``: three folders up is the
    interpreter's ``lib``, not a checkout, and its ``node_modules`` must not be looked at.
    """
    here = Path(__file__).resolve()
    root = here.parents[3]
    return root if (root / "src" / "pi_kernel" / "rpc" / here.name).resolve() == here else None


CHECKOUT = _checkout()
"""The pi-kernel source checkout this package runs from (editable installs); None otherwise."""

INSTALL_HINT = (
    "Install Pi with `npm ci` in the pi-kernel checkout, record one with "
    f"`python -m pi_kernel install --pi PATH`, or point {variables.PI_PATH} at a working `pi`."
)

Source = Literal["setting", "environment", "kernelspec", "project", "PATH"]

SOURCE_REASONS: dict[Source, str] = {
    "setting": "the pi_path setting or --pi",
    "environment": f"{variables.PI_PATH} in the environment",
    "kernelspec": (
        f"{variables.PI_PATH} recorded in the kernelspec by `python -m pi_kernel install --pi`"
    ),
    "project": "the checkout's `npm ci` install",
    "PATH": f"`pi` on PATH (no {variables.PI_PATH}, no checkout install)",
}
"""Why a Pi was chosen, as status and ``doctor`` say it."""


@dataclass(frozen=True)
class PiInstall:
    """A Pi that can be started: what was chosen, from where, and how to run it."""

    path: Path
    """The Pi executable as configured or found (what status and errors report)."""
    source: Source
    argv: tuple[str, ...]
    """Program and leading arguments: ``(node, cli.js)`` for a script, ``(pi,)`` otherwise."""
    package: str | None = None
    version: str | None = None

    @property
    def version_tuple(self) -> tuple[int, ...] | None:
        if self.version is None:
            return None
        try:
            return tuple(int(part) for part in self.version.split("-")[0].split("."))
        except ValueError:
            return None

    def at_least(self, *version: int) -> bool:
        """True when Pi is this version or newer; an unknown version counts as new."""
        mine = self.version_tuple
        return mine is None or mine >= version

    def describe(self, *, why: bool = True) -> str:
        """Which Pi, where, and (``why``) where that choice came from."""
        label = f"{self.package or 'pi'} {self.version or '(version unknown)'} at {self.path}"
        return f"{label} (from {SOURCE_REASONS[self.source]})" if why else label


def locate_pi(explicit: str | os.PathLike[str] | None = None, *, also: str = "") -> PiInstall:
    """Choose the Pi to run, in the documented order; raise ``PiNotFound`` if it can't run.
    ``also``: what else the caller's user can do, added to the error's hint."""
    if explicit:
        return inspect_pi(Path(explicit).expanduser(), "setting", also=also)
    from_env = variables.read(variables.PI_PATH)
    if from_env:
        # Set beside it by ``install --pi``: the path came from the kernelspec.
        recorded = variables.read(variables.PI_RECORDED) == from_env
        source: Source = "kernelspec" if recorded else "environment"
        return inspect_pi(Path(from_env).expanduser(), source, also=also)
    project_pi = CHECKOUT / "node_modules" / ".bin" / "pi" if CHECKOUT is not None else None
    if project_pi is not None and project_pi.exists():
        return inspect_pi(project_pi, "project", also=also)
    on_path = shutil.which("pi")
    if on_path:
        return inspect_pi(Path(on_path), "PATH", also=also)
    checkout = "no checkout install" if CHECKOUT is not None else "no checkout (a wheel install)"
    raise PiNotFound(
        "pi",
        f"no {variables.PI_PATH}, {checkout}, and no `pi` on PATH",
        hint=_install_hint(also),
    )


def _install_hint(also: str) -> str:
    return f"{INSTALL_HINT} {also}" if also else INSTALL_HINT


def inspect_pi(path: Path, source: Source, *, also: str = "") -> PiInstall:
    """Check that ``path`` can be run and work out the command line for it (``also``: as
    in ``locate_pi``)."""
    hint = _install_hint(also)
    # Pi runs in the notebook's directory, not necessarily ours: a relative path would
    # point somewhere else there.
    path = path.absolute()
    if not path.exists():
        raise PiNotFound(str(path), "no such file", hint=hint)
    if path.is_dir():
        raise PiNotFound(str(path), "it is a directory, not the pi executable", hint=hint)
    real = path.resolve()
    package, version = _package_of(real)
    if _is_node_script(real):
        node = _node_for(path, real)
        if node is None:
            raise PiNotFound(
                str(path),
                "it is a Node.js script and no `node` was found to run it",
                hint=hint,
            )
        return PiInstall(path, source, (node, str(real)), package, version)
    if not os.access(real, os.X_OK):
        raise PiNotFound(str(path), "it is not executable", hint=hint)
    return PiInstall(path, source, (str(path),), package, version)


def _is_node_script(real: Path) -> bool:
    if real.suffix in {".js", ".mjs", ".cjs"}:
        return True
    try:
        with real.open("rb") as handle:
            first = handle.readline(128)
    except OSError:
        return False
    return first.startswith(b"#!") and b"node" in first


def _node_for(path: Path, real: Path) -> str | None:
    """The Node beside the script (npm's ``.bin``), else the nearest ``node_modules``'s."""
    beside = path.parent / "node"
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    for parent in real.parents:
        if parent.name == "node_modules":
            candidate = parent / ".bin" / "node"
            if candidate.exists() and os.access(candidate, os.X_OK):
                return str(candidate)
    return shutil.which("node")


def _package_of(real: Path) -> tuple[str | None, str | None]:
    """The npm package name and version that ``real`` belongs to, if it is a Pi package."""
    for parent in real.parents:
        manifest = parent / "package.json"
        if not manifest.is_file():
            continue
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, None
        name = data.get("name")
        if name is None:
            continue  # a nested manifest such as {"type": "module"}; keep walking up
        if name in PI_PACKAGES:
            version = data.get("version")
            return name, version if isinstance(version, str) else None
        return None, None
    return None, None


def startup_failure(install: PiInstall, exc: PiExited) -> PiExited:
    """What to tell the user about a Pi that exited before its first answer."""
    where = install.path
    tail = exc.stderr_tail
    stderr = "\n".join(tail)
    code = f" with code {exc.returncode}" if exc.returncode is not None else ""
    if "enableCompileCache" in stderr or ("SyntaxError" in stderr and "node:" in stderr):
        node = install.argv[0] if len(install.argv) > 1 else "node on PATH"
        return PiExited(
            f"Pi at {where} exited during start-up{code}: it needs Node >= 22 ({node} is older)",
            returncode=exc.returncode,
            stderr_tail=tail,
            hint="Run `npm ci` in the pi-kernel checkout (it installs node@22 beside Pi).",
        )
    last = tail[-1] if tail else "no output on stderr"
    return PiExited(
        f"Pi at {where} exited during start-up{code}: {last}",
        returncode=exc.returncode,
        stderr_tail=tail,
        hint="Run it by hand with `--mode rpc` to see why, or check PI_KERNEL_PI_PATH.",
    )
