"""Cassettes: a notebook's Pi turns recorded to a JSON-lines file, and answered from it.

Each line is one ``CassetteEntry``: the request (the turn's position since recording
started, the prompt as sent, the model and thinking level it was sent with) and the turn's
``Transcript``.  Replaying takes the entries in order; a request that differs from the
recorded one, or one past the end, is an error that says what differs, never a silent
live call.  ``Cassettes`` is one notebook's state: recording, replaying, or neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict, ValidationError

from ..agent_dir import try_claim
from ..errors import CassetteError, FileRefused, PiError
from ..transcript import Transcript
from .export import write_file


class TurnRequest(BaseModel):
    """What decides a turn's answer, as far as a notebook controls it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    position: int
    prompt: str
    model: str | None
    thinking_level: str | None

    def describe(self) -> str:
        prompt = self.prompt if len(self.prompt) <= 60 else self.prompt[:57] + "..."
        return f"{prompt!r} of {self.model or 'the default model'} (thinking {self.thinking_level})"


class CassetteEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request: TurnRequest
    transcript: Transcript


class Recorder:
    """Records each turn to a cassette.

    After every turn the whole cassette is written anew (``export.write_file``: a
    temporary file, then a rename), so the file is always a complete cassette and nothing
    is replaced before the first turn.  A path that holds anything but a cassette is
    refused, and a claim (``agent_dir.try_claim``) keeps a second kernel from recording to
    the same path.
    """

    def __init__(self, path: Path) -> None:
        if path.suffix != ".jsonl":
            raise CassetteError(
                f"A cassette is a .jsonl file, not {path.name}: give a path ending in .jsonl."
            )
        if path.exists() and not is_cassette(path):
            raise CassetteError(
                f"{path.name} exists and is not a cassette; pi-kernel replaces only "
                "cassettes: give another path."
            )
        self.path = path
        self._lock = _claim(path)
        self._lines: list[str] = []
        self._written: tuple[int, int, int] | None = None
        """The file this recorder last wrote (inode, size, mtime): it may write over that."""
        self.position = 0

    def write(self, prompt: str, model: str | None, level: str | None, turn: Transcript) -> None:
        request = TurnRequest(
            position=self.position, prompt=prompt, model=model, thinking_level=level
        )
        entry = CassetteEntry(request=request, transcript=turn)
        lines = [*self._lines, entry.model_dump_json() + "\n"]
        try:
            write_file(self.path, "".join(lines), ours=self._ours)
        except FileRefused as exc:
            raise CassetteError(f"{exc} The turn was not recorded.") from None
        self._written = _identity(self.path)
        self._lines = lines
        self.position += 1

    def _ours(self, path: Path) -> bool:
        """Before the first turn, any cassette; after it, only the file this recorder wrote
        (not read again every turn; a file changed meanwhile by anyone else is refused)."""
        if self._written is None:
            return is_cassette(path)
        return _identity(path) == self._written

    def close(self) -> None:
        self._lock.close()


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns


def _claim(path: Path) -> IO[bytes]:
    """An exclusive claim on the cassette's path, held while recording (the system releases
    it if the kernel dies)."""
    try:
        handle = try_claim(path.resolve(), "cassette")
    except OSError as exc:
        raise CassetteError(f"Cannot claim the cassette {path}: {exc.strerror}.") from None
    except PiError as exc:
        raise CassetteError(f"Cannot claim the cassette {path}: {exc}") from None
    if handle is None:
        raise CassetteError(
            f"Another kernel is recording to {path.name}: give this notebook its own cassette."
        )
    return handle


def is_cassette(path: Path) -> bool:
    try:
        read_cassette(path)
    except CassetteError:
        return False
    return True


class Player:
    """Answers requests from a cassette, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries = read_cassette(path)
        self.position = 0

    def take(self, prompt: str, model: str | None, level: str | None) -> Transcript | None:
        """The recorded transcript for this request; None when the cassette has no more
        turns.  Raises ``CassetteError`` when the request differs from the recorded one."""
        if self.position >= len(self.entries):
            return None
        recorded = self.entries[self.position].request
        asked = TurnRequest(
            position=self.position, prompt=prompt, model=model, thinking_level=level
        )
        if asked != recorded:
            raise CassetteError(
                f"Replay mismatch at turn {self.position + 1} of {self.path.name}: this cell "
                f"asks {asked.describe()}, the cassette recorded {recorded.describe()}. "
                "Record again with %pi record PATH, or stop replaying with %pi replay off."
            )
        transcript = self.entries[self.position].transcript
        self.position += 1
        return transcript.model_copy(update={"replayed_from": self.path.name})


def read_cassette(path: Path) -> list[CassetteEntry]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise CassetteError(
            f"{path.name} is not a cassette (it is not text); record one with %pi record PATH."
        ) from None
    except FileNotFoundError:
        raise CassetteError(f"No cassette at {path}: record one with %pi record PATH.") from None
    except OSError as exc:
        raise CassetteError(f"Cannot read the cassette {path}: {exc.strerror}.") from None
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append(CassetteEntry.model_validate_json(line))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise CassetteError(
                f"{path.name}, line {number} is not a cassette entry ({where}: "
                f"{problem['msg']}); record it again with %pi record PATH."
            ) from None
    return entries


class Cassettes:
    """A notebook's cassette: recording to one, replaying one, or neither.

    ``problem`` is why the cassette the environment named cannot be used: every turn says
    so, rather than asking Pi live, until the notebook records, replays or says ``off``.
    """

    def __init__(self) -> None:
        self.recorder: Recorder | None = None
        self.player: Player | None = None
        self.live_on_miss = False
        self.problem: str | None = None

    def record(self, path: Path) -> Recorder:
        """Record every later turn to a new cassette at ``path``."""
        if self.player is not None:
            raise CassetteError(
                f"Replaying {self.player.path.name}: stop with %pi replay off before recording."
            )
        if self.recorder is not None and self.recorder.path == path:
            self.stop_recording()  # recording there again: this kernel's own lock goes first
        recorder = Recorder(path)
        self.stop_recording()
        self.recorder = recorder
        self.problem = None
        return recorder

    def stop_recording(self) -> Recorder | None:
        """The recorder just closed; None when not recording."""
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close()
        return recorder

    def replay(self, path: Path, *, live_on_miss: bool) -> Player:
        """Answer later turns from the cassette at ``path``, in order; past its end, ask Pi
        when ``live_on_miss``, else refuse."""
        if self.recorder is not None:
            raise CassetteError(
                f"Recording to {self.recorder.path.name}: stop with %pi record off first."
            )
        self.player = Player(path)
        self.live_on_miss = live_on_miss
        self.problem = None
        return self.player

    def stop_replaying(self) -> Player | None:
        """The player just dropped; None when not replaying."""
        player, self.player = self.player, None
        return player

    def forget_problem(self) -> bool:
        """After ``off``: the environment's unusable cassette no longer stops turns."""
        had, self.problem = self.problem is not None, None
        return had

    def answer(self, prompt: str, model: str | None, level: str | None) -> Transcript | None:
        """The replayed transcript for this request; None when the turn should ask Pi.
        Raises ``CassetteError`` for a mismatch, or a turn past the end without
        ``live_on_miss``."""
        if self.player is None:
            return None
        recorded = self.player.take(prompt, model, level)
        if recorded is None and not self.live_on_miss:
            raise CassetteError(
                f"Replay: {self.player.path.name} holds {len(self.player.entries)} turns and "
                "this cell asks for one more. Record again with %pi record PATH, or "
                "replay with --live-on-miss to let such cells ask Pi."
            )
        return recorded

    def keep(self, prompt: str, model: str | None, level: str | None, turn: Transcript) -> None:
        """Write a turn that asked Pi to the cassette being recorded, if any."""
        if self.recorder is not None:
            self.recorder.write(prompt, model, level, turn)

    def in_use(self, path: Path) -> bool:
        """Whether ``path`` is the cassette being recorded or replayed."""
        using = [
            self.recorder.path if self.recorder else None,
            self.player.path if self.player else None,
        ]
        return any(used is not None and used.resolve() == path.resolve() for used in using)

    def describe(self) -> str | None:
        """One line for a status report; None without a cassette."""
        if self.problem is not None:
            return self.problem
        if self.recorder is not None:
            return f"recording to {self.recorder.path.name} ({self.recorder.position} turns)"
        if self.player is not None:
            return (
                f"replaying {self.player.path.name} "
                f"({self.player.position} of {len(self.player.entries)} turns used)"
            )
        return None

    def close(self) -> None:
        self.stop_recording()
