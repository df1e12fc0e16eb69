"""Pi confined with bubblewrap: what Pi's bash can reach is what the sandbox lets it see.

A policy limits what Pi is *offered*; Pi's own tools (bash above all) run as the user, with
the kernel's view of the machine: other processes' ``/proc/<pid>/environ`` (the hub's token
in the kernel's and the server's), Jupyter's connection files, other kernels' sockets.  With
the sandbox on, Pi, and so every command it runs, starts inside ``bwrap`` (Debian's
``bubblewrap``, the namespaces Flatpak uses) with:

- its own PID namespace and ``/proc``: no other process is visible, nor its environment;
- no capabilities (root's included: it could remount the filesystem writable);
- the filesystem read-only, except the notebook's folder, Pi's agent folder (sessions,
  settings), this Pi's tool channel folder and the extra ``writable`` paths;
- empty temporary folders over ``/tmp``, ``$TMPDIR``, ``$XDG_RUNTIME_DIR``, pi-kernel's
  runtime folder (other kernels' sockets) and the ``hidden`` paths the caller adds
  (Jupyter's runtime folder; a hidden file reads as empty), and ``$HOME`` and Node's
  compile caches, Node and Pi's packages, pi-kernel and the kernel's Python environment
  read-only even when they lie under one of those;
- the network kept: Pi must reach its provider.

bwrap is started with Pi's (filtered) environment and nothing else: inside the PID namespace
bwrap's own helper is process 1, and its environment is readable at ``/proc/1/environ``.

Wanted but impossible (no ``bwrap``, or namespaces refused, as in many containers) is an
error before any Pi starts, never an unconfined start.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
from jupyter_core.paths import jupyter_runtime_dir

from . import variables
from .agent_dir import agent_dir, runtime_dir
from .rpc.environment import for_pi
from .rpc.errors import PiError

BWRAP = "bwrap"

INSTALL_HINT = (
    "Install bubblewrap (Debian and Ubuntu: `apt-get install bubblewrap`; Fedora: `dnf install "
    "bubblewrap`), or turn the sandbox off (%config PiMagics.sandbox = False, or unset "
    f"{variables.SANDBOX})."
)
NAMESPACES_HINT = (
    "bubblewrap needs user namespaces: allow them (sysctl user.max_user_namespaces above 0; "
    "Debian's kernel.unprivileged_userns_clone=1; a container started with them allowed), or "
    f"turn the sandbox off (%config PiMagics.sandbox = False, or unset {variables.SANDBOX})."
)

PROBE_TIMEOUT = 10.0
"""Seconds the trial run of the sandbox may take (it starts ``true``)."""


class SandboxUnavailable(PiError):
    """The sandbox was asked for and cannot be made here: no Pi is started."""


OFF_WORDS = frozenset({"", "0", "false", "no", "off"})
"""What ``PI_KERNEL_SANDBOX`` says to mean off; any other value is on."""


@dataclass(frozen=True)
class Sandbox:
    """What Pi's sandbox lets it write and hides from it, beyond the defaults above."""

    writable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()


def wanted_by_environment() -> bool:
    """Whether the kernel's environment asks for the sandbox (``PI_KERNEL_SANDBOX``): a
    deployment's word that cannot be read counts as on, since off must be said."""
    return (variables.read(variables.SANDBOX) or "").strip().lower() not in OFF_WORDS


def kernel_sandbox(writable: Sequence[Path], connection_file: Path | None) -> Sandbox:
    """The sandbox of a Pi started by a Jupyter kernel: Jupyter's runtime folder and the
    kernel's connection file are hidden (they lead into the kernels)."""
    # Resolved: the sandbox a Pi started early and the notebook's compare equal.
    hidden = [Path(jupyter_runtime_dir()).resolve()]
    if connection_file is not None:
        hidden.append(connection_file.resolve())
    return Sandbox(writable=tuple(writable), hidden=tuple(hidden))


async def confine(
    sandbox: Sandbox,
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    channel: Path | None = None,
) -> list[str]:
    """``argv`` run inside ``sandbox`` (``channel``: the folder of this Pi's tool socket).

    Checks first, with a trial run of the same sandbox, that it can be made: raises
    ``SandboxUnavailable`` (one sentence and what to do) when it cannot."""
    bwrap = shutil.which(BWRAP, path=env.get("PATH", os.defpath))
    if bwrap is None:
        raise SandboxUnavailable(
            "The sandbox is on, and bubblewrap (`bwrap`) is not installed: Pi was not started.",
            hint=INSTALL_HINT,
        )
    options = [bwrap, *_options(sandbox, argv, cwd=cwd, env=env, channel=channel)]
    await _try(options, for_pi(env))
    return [*options, "--", *argv]


def _options(
    sandbox: Sandbox,
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    channel: Path | None,
) -> list[str]:
    hidden = [Path("/tmp"), runtime_dir(), *sandbox.hidden]
    for name in (variables.TMPDIR, variables.XDG_RUNTIME_DIR):
        if value := variables.read(name, env):
            hidden.append(Path(value))
    home = variables.read(variables.HOME, env)
    readable = [Path(home)] if home else []
    # Node's compile cache and jiti's (Pi's extensions) under the temp folder, read-only: a
    # sandboxed Pi starts as fast as one outside (an empty cache costs about 0.2 s), and
    # cannot plant compiled code that another Pi would run.
    temp = Path(variables.read(variables.TMPDIR, env) or "/tmp")
    readable += [temp / "node-compile-cache", temp / "jiti"]
    if cache := variables.read(variables.NODE_COMPILE_CACHE, env):
        readable.append(Path(cache))
    # What runs Pi, and what Pi runs with, wherever it is installed (also under /tmp): Node
    # and Pi's packages, pi-kernel (its extension), the kernel's Python environment.
    readable += [_install_root(Path(item)) for item in argv if Path(item).is_absolute()]
    readable += [Path(__file__).resolve().parent, Path(sys.prefix)]
    writable = [Path(cwd), agent_dir(env), *sandbox.writable]
    if channel is not None:
        writable.append(channel)
    # Each path gets the rule of its nearest ruled folder: mounts are made shallow to deep
    # (at one depth: hidden, then readable, then writable), so the notebook's folder under
    # /tmp stays writable and Jupyter's runtime folder under a writable home stays hidden.
    # A home under a hidden folder (a test's) is seen, read-only, as at home.
    rules: dict[Path, int] = {}
    for kind, paths in ((HIDE, hidden), (READ, readable), (WRITE, writable)):
        for path in _existing(paths):
            rules[path] = max(kind, rules.get(path, kind))
    options = [
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--cap-drop",
        "ALL",  # root keeps every capability inside by default, remounting / writable too
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]
    for path, kind in sorted(rules.items(), key=lambda rule: (len(rule[0].parts), rule[1])):
        if kind == WRITE:
            options += ["--bind", str(path), str(path)]
        elif kind == READ:
            options += ["--ro-bind", str(path), str(path)]
        elif path.is_dir():
            options += ["--tmpfs", str(path)]
        elif _ruled_by(path, rules) != HIDE:  # a file not already under a hidden folder
            options += ["--ro-bind", os.devnull, str(path)]
    return [*options, "--chdir", str(Path(cwd).resolve())]


HIDE, READ, WRITE = range(3)


def _ruled_by(path: Path, rules: Mapping[Path, int]) -> int:
    """The rule of ``path``'s nearest ruled folder (readable, when none is)."""
    return next((rules[folder] for folder in path.parents if folder in rules), READ)


def _install_root(path: Path) -> Path:
    """The ``node_modules`` folder ``path`` is installed in (its dependencies are there
    too), else its own folder."""
    real = path.resolve()
    return next((parent for parent in real.parents if parent.name == "node_modules"), real.parent)


def _existing(paths: Sequence[Path]) -> list[Path]:
    """``paths`` resolved (a mount follows no symlink), those that exist, each once."""
    found: dict[Path, None] = {}
    for path in paths:
        try:
            found[path.resolve(strict=True)] = None
        except OSError:
            continue
    return list(found)


async def _try(options: Sequence[str], env: Mapping[str, str]) -> None:
    try:
        with anyio.fail_after(PROBE_TIMEOUT):
            trial = await anyio.run_process([*options, "--", "true"], env=dict(env), check=False)
    except (OSError, TimeoutError) as exc:
        raise SandboxUnavailable(
            f"The sandbox is on, and bubblewrap could not be run ({exc or 'no answer'}): "
            "Pi was not started.",
            hint=INSTALL_HINT,
        ) from None
    if trial.returncode == 0:
        return
    said = trial.stderr.decode(errors="replace").strip().splitlines()
    reason = said[-1].removeprefix("bwrap: ") if said else f"exit code {trial.returncode}"
    namespaces = "namespace" in reason.lower() or "permission" in reason.lower()
    raise SandboxUnavailable(
        f"The sandbox is on, and bubblewrap cannot make it here ({reason}): Pi was not started.",
        hint=NAMESPACES_HINT if namespaces else INSTALL_HINT,
    )
