"""Pi's agent directory: where it is for a given environment, what to do when it gives Pi no
models, which session file a resume means, and keeping the user's global settings there as
they were.

Some Pi versions save every model or thinking-level change as the new global default in
``settings.json`` in the agent directory (0.73 does, 0.87 does not).  A notebook choosing a
model for itself must not change what ``pi`` in a terminal starts with tomorrow, so every
setter the session sends runs inside ``settings_kept``: whatever Pi wrote there is put back.
Pi writes before it answers, and merges into the file as it is on disk, so putting the old
bytes back right after the answer is enough.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from . import variables
from .errors import PiError, PiSessionNotFound
from .files import replace_file

logger = logging.getLogger(__name__)

NO_MODELS_HINT = (
    "Pi lists only models whose provider has credentials: run `pi` and use /login, or set "
    "a provider key such as ANTHROPIC_API_KEY or OPENAI_API_KEY before starting Jupyter, "
    "or add a provider to models.json in Pi's agent directory."
)


def no_models_hint() -> str:
    """What to do when Pi offers no models, after the main command's reason if it gave one."""
    problem = variables.read(variables.BACKEND_PROBLEM)
    return f"{problem} {NO_MODELS_HINT}" if problem else NO_MODELS_HINT


def agent_dir(env: Mapping[str, str]) -> Path:
    """Pi's agent directory for a Pi started with ``env``: ``$PI_CODING_AGENT_DIR`` or
    ``~/.pi/agent``, with ``~`` meaning that environment's ``HOME``."""
    home = variables.read(variables.HOME, env) or os.path.expanduser("~")
    configured = variables.read(variables.AGENT_DIR, env)
    if configured:
        if configured == "~" or configured.startswith("~/"):
            configured = home + configured[1:]
        return Path(configured)
    return Path(home) / ".pi" / "agent"


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


@contextmanager
def settings_kept(path: Path) -> Iterator[None]:
    """Put ``path`` back as it was (or remove it, if it did not exist) after the block."""
    before = _read(path)
    try:
        yield
    finally:
        if _read(path) != before:
            if before is None:
                path.unlink(missing_ok=True)
            else:
                replace_file(path, before)


def find_session(
    target: str | None,
    current: Path,
    cwd: str,
    claimed: Callable[[Path], bool] = lambda path: False,
) -> Path:
    """The session file ``target`` means: a path (relative to ``cwd``), an id (or the start
    of one) among the sessions beside ``current``, or, when None, the newest of those other
    than ``current`` that no other kernel's Pi is using (``claimed``)."""
    directory = current.parent
    if target is None:
        earlier = [p for p in directory.glob("*.jsonl") if p != current and not claimed(p)]
        if not earlier:
            raise PiSessionNotFound(
                f"There is no earlier Pi session in {directory} that another notebook's Pi "
                "is not using."
            )
        return max(earlier, key=lambda path: path.stat().st_mtime)
    if target.endswith(".jsonl") or os.sep in target:
        path = Path(cwd, target).expanduser()
        if not path.is_file():
            raise PiSessionNotFound(f"There is no session file {path}.")
    else:
        found = sorted(directory.glob(f"*_{glob.escape(target)}*.jsonl"))
        if len(found) != 1:
            problem = "no session" if not found else f"{len(found)} sessions"
            raise PiSessionNotFound(
                f"{problem.capitalize()} with id {target!r} in {directory}.",
                hint="Give the whole id, or the session file's path.",
            )
        path = found[0]
    if claimed(path):
        raise PiSessionNotFound(
            f"Another notebook's Pi is using the session {path.name}: two Pis would write "
            "one file. Stop that notebook's Pi first, or start from a session of your own."
        )
    return path


class SessionClaim:
    """The Pi session file this kernel's Pi writes, claimed so other kernels can tell.

    Pi does not lock its session files, and two Pis appending to one file tangle both
    conversations.  While this kernel's Pi is on a session, the kernel holds an exclusive
    lock on a claim file named after it, in a per-user directory of its own (never in Pi's);
    the system releases it when the kernel dies.
    """

    def __init__(self) -> None:
        self._held: tuple[Path, IO[bytes]] | None = None

    def hold(self, session_file: str | None) -> None:
        """Claim ``session_file`` (releasing the one held before)."""
        path = Path(session_file).resolve() if session_file else None
        if self._held is not None and self._held[0] == path:
            return
        self.release()
        if path is None:
            return
        try:
            handle = try_claim(path, "session")
        except (OSError, PiError) as exc:  # a claim is a courtesy to other kernels, never a failure
            logger.info("cannot claim the session %s: %s", path.name, exc)
            return
        if handle is not None:  # else another kernel holds it: ``taken`` tells, not us
            self._held = (path, handle)

    def release(self) -> None:
        if self._held is not None:
            self._held[1].close()
            self._held = None

    def taken(self, session_file: Path) -> bool:
        """Whether another kernel's Pi is using ``session_file``."""
        path = session_file.resolve()
        if self._held is not None and self._held[0] == path:
            return False
        try:
            handle = try_claim(path, "session")  # held a moment, then let go
        except (OSError, PiError):  # no claim can be made here: none can be seen either
            return False
        if handle is None:
            return True
        handle.close()
        return False


def state_dir(env: Mapping[str, str]) -> Path:
    """``$PI_KERNEL_STATE_DIR``, else ``$XDG_STATE_HOME/pi-kernel`` (``~/.local/state``)."""
    configured = variables.read(variables.STATE_DIR, env)
    if configured:
        return Path(configured).expanduser()
    home = variables.read(variables.HOME, env) or Path.home()
    base = variables.read(variables.XDG_STATE_HOME, env) or str(Path(home, ".local/state"))
    return Path(base) / "pi-kernel"


def runtime_dir() -> Path:
    """pi-kernel's per-user runtime directory (0700): claims, and the kernel tools' sockets.

    ``$XDG_RUNTIME_DIR/pi-kernel-UID``, else the same in the temporary folder; when that one
    is not this user's private folder (another user made it first in a shared ``/tmp``), a
    ``runtime`` folder in pi-kernel's state folder instead, which is in the user's home."""
    runtime = variables.read(variables.XDG_RUNTIME_DIR) or tempfile.gettempdir()
    usual = Path(runtime) / f"pi-kernel-{os.getuid()}"
    try:
        return _private_folder(usual)
    except PiError as exc:
        fallback = state_dir(os.environ) / "runtime"
        logger.warning("%s Using %s instead.", exc, fallback)
        return _private_folder(fallback)


def _private_folder(folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # In a shared temporary directory someone else may have made it first: a folder another
    # user owns or can write into would let them swap the sockets and locks inside.
    found = folder.lstat()
    if found.st_uid == os.getuid() and stat.S_ISDIR(found.st_mode) and found.st_mode & 0o077:
        folder.chmod(0o700)  # ours, made by an older pi-kernel with the default mode
        found = folder.lstat()
    if found.st_uid != os.getuid() or found.st_mode & 0o077 or not stat.S_ISDIR(found.st_mode):
        raise PiError(
            f"{folder} is not a private folder of this user (owner uid {found.st_uid}, "
            f"mode {found.st_mode & 0o777:o}).",
            hint="Remove it, or set XDG_RUNTIME_DIR to a private folder.",
        )
    return folder


def try_claim(path: Path, kind: str) -> IO[bytes] | None:
    """An exclusive claim on ``path`` (resolved) among this user's kernels, held while the
    returned file stays open (the system releases it when the kernel dies); None when
    another kernel holds it.  Raises OSError (or PiError) when no claim can be made."""
    handle = claim_file(path, kind).open("wb")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def claim_file(path: Path, kind: str) -> Path:
    """Where a kernel locks ``path`` (a resolved path) to claim it against other kernels: a
    per-user runtime directory of pi-kernel's own, so no lock file lands beside the user's
    files or in Pi's folders (and none needs removing: a lock dies with its holder)."""
    folder = runtime_dir() / f"{kind}-claims"
    folder.mkdir(mode=0o700, exist_ok=True)
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:32]
    return folder / f"{digest}.lock"
