"""``%pi record``, ``%pi replay`` and ``%pi export``: what the notebook keeps of its turns.

A part of ``PiMagics`` (a mixin: the magics own the cassettes, the transcripts, the session
and its bridge); paths are the user's, relative to the notebook's directory.
"""

from __future__ import annotations

from pathlib import Path

from IPython.core.error import UsageError

from pi_kernel import variables
from pi_kernel.bridge import Bridge
from pi_kernel.errors import CassetteError, FileRefused
from pi_kernel.records.cassette import Cassettes
from pi_kernel.records.export import (
    is_jsonl_export,
    is_markdown_export,
    to_jsonl,
    to_markdown,
    write_file,
)
from pi_kernel.session import PiSession
from pi_kernel.transcript import Transcript

from .subcommands import usage_of


class RecordCommands:
    """The ``%pi`` subcommands that record, replay and export this notebook's turns."""

    bridge: Bridge
    session: PiSession
    cassettes: Cassettes
    transcripts: list[Transcript]

    def _cassette_from_environment(self) -> None:
        # A cassette named in the environment when the extension loads: how a notebook records
        # or replays in CI or papermill without a cell that says so.
        record, replay = variables.read(variables.RECORD), variables.read(variables.REPLAY)
        if record and replay:
            self.cassettes.problem = (
                f"Both {variables.RECORD} and {variables.REPLAY} are set: set only one."
            )
        elif record or replay:
            try:
                if record:
                    self._pi_record([record])
                else:
                    self._pi_replay([replay or ""])
            except UsageError as exc:
                self.cassettes.problem = (
                    f"{variables.RECORD if record else variables.REPLAY}: {exc}"
                )
        if self.cassettes.problem is not None:
            print(self.cassettes.problem)

    def _pi_record(self, rest: list[str]) -> None:
        if rest == ["off"]:
            recorder = self.cassettes.stop_recording()
            if recorder is not None:
                print(f"Stopped recording: {recorder.position} turns in {recorder.path.name}.")
            elif not self._forget_cassette_problem():
                raise UsageError("Not recording. Start with %pi record PATH.")
            return
        if len(rest) != 1:
            raise UsageError(usage_of("record"))
        path = notebook_path(rest[0])
        replacing = " (the cassette there is replaced at the first turn)" if path.exists() else ""
        try:
            self.cassettes.record(path)
        except CassetteError as exc:
            raise UsageError(str(exc)) from None
        print(f"Recording every Pi turn to {rest[0]}{replacing}.")

    def _pi_replay(self, rest: list[str]) -> None:
        if rest == ["off"]:
            player = self.cassettes.stop_replaying()
            if player is not None:
                print(f"Stopped replaying {player.path.name}; cells ask Pi again.")
            elif not self._forget_cassette_problem():
                raise UsageError("Not replaying. Start with %pi replay PATH.")
            return
        live_on_miss = "--live-on-miss" in rest
        paths = [word for word in rest if word != "--live-on-miss"]
        if len(paths) != 1 or any(word.startswith("--") for word in paths):
            raise UsageError(usage_of("replay"))
        try:
            player = self.cassettes.replay(notebook_path(paths[0]), live_on_miss=live_on_miss)
        except CassetteError as exc:
            raise UsageError(str(exc)) from None
        after = "ask Pi" if live_on_miss else "are an error"
        print(
            f"Replaying {len(player.entries)} recorded turns from {paths[0]}: "
            f"%%pi cells answer from it, in order; cells past its end {after}."
        )

    def _forget_cassette_problem(self) -> bool:
        if not self.cassettes.forget_problem():
            return False
        print("No cassette: %%pi cells ask Pi.")
        return True

    def _pi_export(self, rest: list[str]) -> None:
        replace = "--replace" in rest
        paths = [word for word in rest if word != "--replace"]
        if len(paths) != 1 or paths[0].startswith("--"):
            raise UsageError(f"{usage_of('export')} (PATH ends in .md, .jsonl or .html)")
        path = notebook_path(paths[0])
        kind = path.suffix.lower()
        if kind not in (".md", ".jsonl", ".html"):
            raise UsageError(f"%pi export writes .md, .jsonl or .html files, not {path.name!r}.")
        if self.cassettes.in_use(path):
            raise UsageError(f"{path.name} is this notebook's cassette: export to another path.")
        if kind == ".html":
            if path.exists() and not replace:
                raise UsageError(
                    f"{path.name} exists: choose another name, or add --replace to overwrite it."
                )
            written = self.bridge.call(self.session.export_html, str(path))
            print(
                f"Pi exported its whole session as HTML to {written}. It is Pi's own page: "
                "like Pi's session file it is not redacted (a credential a tool printed is in it)."
            )
            return
        if not self.transcripts:
            raise UsageError("Nothing to export yet: no Pi turn ran in this kernel.")
        turns = self._conversation_turns()
        if kind == ".md":
            text, ours = to_markdown(turns), is_markdown_export
        else:
            text, ours = to_jsonl(turns), is_jsonl_export
        try:
            write_file(path, text, ours=ours, replace=replace)
        except FileRefused as exc:
            raise UsageError(str(exc)) from None
        left = len(self.transcripts) - len(turns)
        print(
            f"Exported {len(turns)} turns to {paths[0]}"
            + (
                f" (left out: {left} earlier {'answer' if left == 1 else 'answers'} of cells "
                "asked again)."
                if left
                else "."
            )
        )

    def _conversation_turns(self) -> list[Transcript]:
        """This kernel's turns as the conversation now stands, in the order asked: an
        answer replaced by its cell's re-run (on another branch of Pi's session, where it
        stays) is left out."""
        conversation = self.session.conversation
        on_branch = conversation.branch_prompts()

        def current(turn: Transcript) -> bool:
            place = turn.place
            if place is None or place.entry_id is None:
                return True
            return turn.session_id != conversation.session_id or place.entry_id in on_branch

        return [turn for turn in self.transcripts if current(turn)]


def notebook_path(text: str) -> Path:
    """A path the user typed: relative to the notebook's directory (the kernel's working
    directory), never to Pi's."""
    try:
        here = Path.cwd()
    except FileNotFoundError:
        raise UsageError(
            "This notebook's directory no longer exists (moved or deleted): give an absolute "
            "path, or restart the kernel from the notebook's new place."
        ) from None
    return here / Path(text).expanduser()
