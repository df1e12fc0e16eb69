"""``%%pi`` and ``%pi``: Pi prompts from any IPython kernel.

``%%pi`` sends the cell to this notebook's Pi session and streams the answer into the cell;
``%pi`` has the subcommands of ``subcommands.SUBCOMMANDS``.  One ``PiMagics``
instance per shell owns one bridge thread and one ``PiSession``; loading the extension
starts Pi in the background so the first cell does not wait for it.
"""

from __future__ import annotations

import os
import queue
import shlex
import string
import sys
import time
from collections.abc import Mapping
from concurrent import futures
from concurrent.futures import Future
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import Bool, Float, List, Unicode, observe

from pi_kernel.cassette import CassetteError, Player, Recorder
from pi_kernel.export import to_jsonl, to_markdown
from pi_kernel.redaction import redact, secret_values
from pi_kernel.rpc.client import ClientEvent, ClientNotice, DialogDeclined, UsageTally
from pi_kernel.rpc.errors import PiExited
from pi_kernel.rpc.protocol import CACHE_WARM, ContextUsage, SessionState
from pi_kernel.session import (
    DISCOVERY_TIMEOUT,
    PiSession,
    SessionStatus,
    TurnResult,
    no_models_hint,
)
from pi_kernel.transcript import Transcript, transcript_of
from pi_kernel.turn import Turn, tokens_text

from .bridge import Bridge
from .dialogs import Dialog, DialogDesk, ask
from .render import TurnDisplay, warming_text
from .subcommands import BY_NAME, NAMES, USAGE, help_text
from .widgets import Picker

Inbox = queue.SimpleQueue[ClientEvent | Dialog | None]
"""What a running cell reads: Pi's events, its dialogs, and None when the turn is over."""


class Request(NamedTuple):
    """A turn as asked: the prompt as sent, and the model and thinking level asked for."""

    prompt: str
    model: str | None
    level: str | None


PUMP_INTERVAL = 1 / 15
"""Longest wait for Pi's next event before the cell looks at the turn again."""
INTERRUPT_GRACE = 2.0
"""Seconds a cell waits after an interrupt for Pi to confirm the abort before moving on."""
RECORD_ENV = "PI_KERNEL_RECORD"
REPLAY_ENV = "PI_KERNEL_REPLAY"
"""A cassette named in the environment when the extension loads: how a notebook records
or replays in CI or papermill without a cell that says so."""

HELP = """\
%%pi [options]      send the cell to Pi; the answer streams into the cell
  --model P/ID      use this model for this cell (see %pi models)
  --thinking LEVEL  use this thinking level for this cell
  --new             start a fresh Pi conversation first
  --out NAME        store the answer text in the Python variable NAME
  --quiet           show only the final answer, no streaming
  --interpolate     replace {name} in the prompt with Python variables ({{ for a brace)

{subcommands}

In the Pi kernel every cell is a prompt unless it starts with % or !; a first line %%py
makes the rest of the cell Python.

When a Pi extension asks a question (select, confirm, input), it appears in the cell and
is answered at Jupyter's input prompt; an empty answer cancels.  A frontend that takes no
input (nbclient, papermill) gets the dialog cancelled with a notice.

To record or replay a whole notebook unedited (CI, papermill), set PI_KERNEL_RECORD or
PI_KERNEL_REPLAY to a cassette path (relative to the notebook) before the kernel starts.

Settings: %config PiMagics.pi_path = "/path/to/pi" (or the PI_KERNEL_PI_PATH environment
variable), PiMagics.pi_args = ["--no-session"], PiMagics.interpolate = True,
PiMagics.discovery_timeout = 15 (seconds the picker waits for Pi).""".replace(
    "{subcommands}", help_text()
)


class _NamesOnly(string.Formatter):
    """``{name}`` from the user's namespace; no attribute or item access, no format code."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        if not field_name.isidentifier():
            raise UsageError(f"Interpolation takes plain names only, not {{{field_name}}}.")
        if field_name not in kwargs:
            raise UsageError(f"Interpolation: no Python variable named {field_name!r}.")
        return kwargs[field_name], field_name


def interpolate(template: str, namespace: Mapping[str, Any]) -> str:
    try:
        return _NamesOnly().vformat(template, (), dict(namespace))
    except ValueError as exc:
        raise UsageError(
            f"Interpolation: {exc} (write {{{{ and }}}} for literal braces)."
        ) from None


@magics_class
class PiMagics(Magics):
    """The ``%%pi`` cell magic and the ``%pi`` line magic."""

    subcommands = NAMES
    """What ``%pi`` takes (the Pi kernel completes them and writes its banner from here)."""

    pi_path = Unicode(
        None,
        allow_none=True,
        help="The Pi executable; when unset, PI_KERNEL_PI_PATH, then the project's npm "
        "install, then `pi` on PATH.",
    ).tag(config=True)
    pi_args = List(
        Unicode(),
        default_value=[],
        help="Extra arguments for `pi --mode rpc`, e.g. ['--no-session'].",
    ).tag(config=True)
    interpolate = Bool(
        False, help="Replace {name} in prompts with Python variables in every cell."
    ).tag(config=True)
    prewarm = Bool(True, help="Start Pi when the extension loads.").tag(config=True)
    discovery_timeout = Float(
        DISCOVERY_TIMEOUT, help="Seconds the picker waits for Pi's models and levels."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.bridge = Bridge()
        self.dialogs = DialogDesk()
        self.session = self.bridge.enter(
            PiSession(
                pi_path=self.pi_path,
                args=self.pi_args,
                ui_handler=self.dialogs.handle,
                discovery_timeout=self.discovery_timeout,
            )
        )
        self.picker: Picker | None = None
        """Made by the first ``%pi picker``; later ones show the same widgets again."""
        self.last_turn: Turn | None = None
        self.last_exit: PiExited | None = None
        self._warming_seen: tuple[int | None, UsageTally] = (None, UsageTally())
        """The Pi process and its cache-warming tally when the last cell's footer was drawn."""
        self.transcripts: list[Transcript] = []
        """Every turn this kernel showed, in order (for %pi export and %pi resume)."""
        self.recorder: Recorder | None = None
        self.player: Player | None = None
        self.live_on_miss = False
        self.cassette_problem: str | None = None
        """Why the cassette named in the environment cannot be used: every %%pi cell says
        so, rather than asking Pi live, until a %pi record or replay command."""
        self._cassette_from_environment()
        if self.prewarm:
            self.bridge.submit(self.session.prewarm)
        if shell is not None:
            shell.events.register("post_run_cell", self._after_cell)

    def _cassette_from_environment(self) -> None:
        record, replay = os.environ.get(RECORD_ENV), os.environ.get(REPLAY_ENV)
        if record and replay:
            self.cassette_problem = f"Both {RECORD_ENV} and {REPLAY_ENV} are set: set only one."
        elif record or replay:
            try:
                if record:
                    self._pi_record([record])
                else:
                    self._pi_replay([replay or ""])
            except UsageError as exc:
                self.cassette_problem = f"{RECORD_ENV if record else REPLAY_ENV}: {exc}"
        if self.cassette_problem is not None:
            print(self.cassette_problem)

    @observe("pi_path", "pi_args")
    def _settings_changed(self, change: Any) -> None:
        if not hasattr(self, "session"):
            return  # configuration applied while __init__ runs: the session reads it itself
        self.session.pi_path = self.pi_path
        self.session.args = tuple(self.pi_args)
        self.bridge.call(self.session.stop)  # the next cell starts the Pi now configured

    @observe("discovery_timeout")
    def _discovery_timeout_changed(self, change: Any) -> None:
        if hasattr(self, "session"):
            self.session.discovery_timeout = self.discovery_timeout

    @property
    def _user_ns(self) -> dict[str, Any]:
        assert self.shell is not None
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def close(self) -> None:
        """Stop Pi and the bridge thread (on unload and at shell exit)."""
        if self.shell is not None:
            with suppress(ValueError):  # already unregistered
                self.shell.events.unregister("post_run_cell", self._after_cell)
        if self.picker is not None:
            self.picker.close()
        if self.recorder is not None:
            self.recorder.close()
        self.bridge.close()

    def _after_cell(self, result: object) -> None:
        # A cell may have restarted Pi (%pi restart, or a dead Pi replaced): the picker then
        # shows what the new one runs with, so it never disagrees with %pi status.
        if self.picker is not None:
            self.picker.follow()

    # -- %%pi --------------------------------------------------------------------------------

    @magic_arguments()
    @argument("--model", help="provider/model-id for this cell")
    @argument("--thinking", help="thinking level for this cell")
    @argument("--new", action="store_true", help="start a fresh Pi conversation first")
    @argument("--out", metavar="NAME", help="store the answer text in this variable")
    @argument("--quiet", action="store_true", help="render only the final state")
    @argument("--interpolate", action="store_true", help="replace {name} with variables")
    @cell_magic
    def pi(self, line: str, cell: str) -> None:
        """Send the cell to Pi and stream the answer into it."""
        args = parse_argstring(self.pi, line)
        prompt = cell.strip()
        if not prompt:
            raise UsageError("The cell is empty: write the prompt for Pi below %%pi.")
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"--out needs a Python variable name, not {args.out!r}.")
        if args.interpolate or self.interpolate:
            prompt = interpolate(prompt, self._user_ns)
        turn = self.run_prompt(
            prompt, model=args.model, thinking=args.thinking, new=args.new, quiet=args.quiet
        )
        if args.out is not None:
            self._user_ns[args.out] = turn.text

    def run_prompt(
        self,
        prompt: str,
        *,
        model: str | None = None,
        thinking: str | None = None,
        new: bool = False,
        quiet: bool = False,
    ) -> Turn:
        """Run one turn (or answer it from the cassette being replayed) and render it;
        raise a short ``PiError`` or ``UsageError`` for expected failures."""
        if self.cassette_problem is not None:
            raise UsageError(self.cassette_problem)
        state = self.bridge.call(self.session.state)
        secrets = secret_values(self.session.env or os.environ)
        # What the turn is asked with: the cell's options, else the notebook's settings.
        request = Request(
            prompt,
            model or state.model_ref,
            thinking or state.thinking_level,
        )
        if self.player is not None:
            try:
                recorded = self.player.take(request.prompt, request.model, request.level)
            except CassetteError as exc:
                raise UsageError(str(exc)) from None
            if recorded is not None:
                return self._show_replayed(recorded, quiet=quiet, secrets=secrets)
            if not self.live_on_miss:
                raise UsageError(
                    f"Replay: {self.player.path.name} holds {len(self.player.entries)} turns and "
                    "this cell asks for one more. Record again with %pi record PATH, or "
                    "replay with --live-on-miss to let such cells ask Pi."
                )
        turn = Turn(prompt)
        display = TurnDisplay(quiet=quiet, secrets=secrets)
        # Pi's events and its dialogs, then None when the turn is over: the pump wakes at
        # once, not after its interval, so the cell ends as soon as Pi settles.
        events: Inbox = queue.SimpleQueue()
        run_turn = partial(
            self.session.run_turn,
            prompt,
            events.put,
            model=model,
            thinking=thinking,
            new=new,
            before=state,
        )
        interrupted = False
        with self.dialogs.open(events.put):
            future = self.bridge.submit(run_turn)
            future.add_done_callback(lambda _: events.put(None))
            try:
                while not future.done():
                    self._pump(events, turn, display, future)
            except KeyboardInterrupt:
                interrupted = True
                future.cancel()
                self._settle(future, events, turn, display)
            self._drain(events, turn, display, unasked="the turn was over")
        for line in self.bridge.call(self.session.take_diagnostics):
            turn.apply(ClientNotice(level="warning", message=f"Pi: {line}"))
        self.last_turn = turn
        turn.thinking_level = request.level
        # Pi names the model at the end of its first message; a turn without one (interrupted
        # or failed early, an extension command) still ran on the model it was asked of, and
        # its footer and transcript say so.
        if turn.model is None and request.model and "/" in request.model:
            turn.provider, _, turn.model = request.model.partition("/")
        if interrupted:
            turn.finish(None, interrupted=True)
            self._finish(turn, display, request, state, secrets)
            return turn
        error = future.exception()
        if isinstance(error, PiExited):
            self.last_exit = error
            error.hint = "The next %%pi cell starts a new Pi; %pi status shows its last stderr."
        if error is not None:
            # The raised error is the message (IPython shows a PiError in a few lines);
            # what streamed before it stays visible above it.
            turn.error = str(error)
            turn.finish(None)
            if turn.visible_blocks:
                display.finish(turn, self._transcript(turn, state, secrets))
            raise error
        result: TurnResult = future.result()
        turn.thinking_level = result.thinking_level
        turn.finish(result.outcome)
        self._finish(turn, display, request, state, secrets, result)
        return turn

    def _transcript(
        self,
        turn: Turn,
        state: SessionState,
        secrets: frozenset[str],
        result: TurnResult | None = None,
    ) -> Transcript:
        """The turn's record, with every credential Pi could use taken out."""
        install = self.session.install
        transcript = transcript_of(
            turn,
            pi_version=install.version if install else None,
            session_id=result.session_id if result else state.session_id,
            session_file=result.session_file if result else state.session_file,
        )
        return Transcript.model_validate(redact(transcript.model_dump(mode="json"), secrets))

    def _finish(
        self,
        turn: Turn,
        display: TurnDisplay,
        request: Request,
        state: SessionState,
        secrets: frozenset[str],
        result: TurnResult | None = None,
    ) -> None:
        """Show the turn's final state with its transcript; keep it (and record it)."""
        turn.cache_warming = self._cache_warming_since_last_cell()
        transcript = self._transcript(turn, state, secrets, result)
        display.finish(turn, transcript)
        self.transcripts.append(transcript)
        if self.recorder is not None:
            self.recorder.write(request.prompt, request.model, request.level, transcript)

    def _cache_warming_since_last_cell(self) -> UsageTally | None:
        """Pi's idle prompt-cache refreshes since the last footer (a new Pi starts at 0)."""
        pid, now = self.bridge.call(self.session.side_usage, CACHE_WARM)
        seen_pid, seen = self._warming_seen
        self._warming_seen = (pid, now)
        added = now.since(seen) if pid == seen_pid else now
        return added if added.count else None

    def _show_replayed(
        self, transcript: Transcript, *, quiet: bool, secrets: frozenset[str]
    ) -> Turn:
        turn = transcript.to_turn()
        turn.replayed_from = transcript.replayed_from
        TurnDisplay(quiet=quiet, secrets=secrets).finish(turn, transcript)
        self.last_turn = turn
        self.transcripts.append(transcript)
        return turn

    def _pump(
        self,
        events: Inbox,
        turn: Turn,
        display: TurnDisplay,
        future: Future[TurnResult],
        *,
        unasked: str | None = None,
    ) -> None:
        """Wait for events, fold them in, refresh the display; then let the next ones gather
        until a refresh is due (one wake-up per refresh, not per event) or the turn ends.
        A dialog is asked, or declined with the reason ``unasked``."""
        with suppress(queue.Empty):
            # A refresh held back last time is due now: show it without waiting for more.
            item = events.get(timeout=0 if display.pending else PUMP_INTERVAL)
            self._take(item, turn, display, unasked)
        self._drain(events, turn, display, unasked)
        display.update(turn)
        futures.wait([future], timeout=display.next_refresh_in())

    def _drain(
        self, events: Inbox, turn: Turn, display: TurnDisplay, unasked: str | None = None
    ) -> None:
        while True:
            try:
                item = events.get_nowait()
            except queue.Empty:
                return
            self._take(item, turn, display, unasked)

    def _take(
        self,
        item: ClientEvent | Dialog | None,
        turn: Turn,
        display: TurnDisplay,
        unasked: str | None,
    ) -> None:
        if isinstance(item, Dialog):
            if unasked is not None:
                item.decline(unasked)
                return
            display.update(turn, now=True)  # the question comes after what led to it
            # An interrupt while asking leaves the dialog to the desk: when the cell ends it
            # declines what was never answered, so Pi always hears back.
            try:
                answer = ask(item.request)
            except DialogDeclined as exc:
                item.decline(str(exc))
            else:
                item.reply(answer)
        elif item is not None:
            turn.apply(item)

    def _settle(
        self,
        future: Future[TurnResult],
        events: Inbox,
        turn: Turn,
        display: TurnDisplay,
    ) -> None:
        """After an interrupt: wait briefly for Pi's abort, showing what still arrives."""
        deadline = time.monotonic() + INTERRUPT_GRACE
        while not future.done() and time.monotonic() < deadline:
            try:
                self._pump(events, turn, display, future, unasked="the cell was interrupted")
            except KeyboardInterrupt:
                break

    # -- %pi ---------------------------------------------------------------------------------

    @line_magic("pi")  # type: ignore[arg-type]  # IPython types the named form as Never
    def pi_line(self, line: str) -> None:
        """%pi SUBCOMMAND: see %pi help."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%pi: {exc} (quote paths with spaces). {USAGE}") from None
        command, rest = (words[0], words[1:]) if words else ("help", [])
        subcommand = BY_NAME.get(command)
        if subcommand is None:
            raise UsageError(f"Unknown subcommand {command!r}. {USAGE}")
        if rest and not subcommand.arguments:
            raise UsageError(f"%pi {command} takes no arguments. {USAGE}")
        try:
            getattr(self, f"_pi_{command}")(rest)
        finally:
            # What Pi said on stderr meanwhile (a model it could not restore on resume, an
            # extension that failed to load) belongs to this cell.
            for line in self.bridge.call(self.session.take_diagnostics):
                print(f"Pi: {line}", file=sys.stderr)

    # One method per row of subcommands.SUBCOMMANDS, named _pi_<name>, given the words
    # after the name.

    def _pi_help(self, rest: list[str]) -> None:
        print(HELP)

    def _pi_status(self, rest: list[str]) -> None:
        status = self.bridge.call(self.session.status)
        print(format_status(status, self.last_turn, self.last_exit, self._cassette()))

    def _pi_models(self, rest: list[str]) -> None:
        self._print_models()

    def _pi_picker(self, rest: list[str]) -> None:
        if self.picker is None:
            self.picker = Picker(self.session, self.bridge)
        self.picker.refresh()
        display(self.picker)

    def _pi_new(self, rest: list[str]) -> None:
        self.bridge.call(self.session.new_session)
        print("Started a fresh Pi conversation.")

    def _pi_abort(self, rest: list[str]) -> None:
        self.bridge.call(self.session.abort)
        print("Asked Pi to stop.")

    def _pi_restart(self, rest: list[str]) -> None:
        client = self.bridge.call(self.session.restart)
        print(f"Restarted Pi (pid {client.pid}).")

    def _pi_record(self, rest: list[str]) -> None:
        if rest == ["off"]:
            if self.recorder is None:
                if self._forget_cassette_problem():
                    return
                raise UsageError("Not recording. Start with %pi record PATH.")
            self.recorder.close()
            print(
                f"Stopped recording: {self.recorder.position} turns in {self.recorder.path.name}."
            )
            self.recorder = None
            return
        if len(rest) != 1:
            raise UsageError("Usage: %pi record PATH (a new .jsonl cassette) | off")
        if self.player is not None:
            raise UsageError(
                f"Replaying {self.player.path.name}: stop with %pi replay off before recording."
            )
        path = notebook_path(rest[0])
        replacing = " (replacing the cassette that was there)" if path.exists() else ""
        try:
            recorder = Recorder(path)
        except OSError as exc:
            raise UsageError(f"Cannot write the cassette {path}: {exc.strerror}.") from None
        if self.recorder is not None:
            self.recorder.close()
        self.recorder = recorder
        self.cassette_problem = None
        print(f"Recording every Pi turn to {rest[0]}{replacing}.")

    def _pi_replay(self, rest: list[str]) -> None:
        if rest == ["off"]:
            if self.player is None:
                if self._forget_cassette_problem():
                    return
                raise UsageError("Not replaying. Start with %pi replay PATH.")
            print(f"Stopped replaying {self.player.path.name}; cells ask Pi again.")
            self.player = None
            return
        live_on_miss = "--live-on-miss" in rest
        paths = [word for word in rest if word != "--live-on-miss"]
        if len(paths) != 1 or any(word.startswith("--") for word in paths):
            raise UsageError("Usage: %pi replay PATH [--live-on-miss] | off")
        if self.recorder is not None:
            raise UsageError(
                f"Recording to {self.recorder.path.name}: stop with %pi record off first."
            )
        try:
            self.player = Player(notebook_path(paths[0]))
        except CassetteError as exc:
            raise UsageError(str(exc)) from None
        self.live_on_miss = live_on_miss
        self.cassette_problem = None
        after = "ask Pi" if live_on_miss else "are an error"
        print(
            f"Replaying {len(self.player.entries)} recorded turns from {paths[0]}: "
            f"%%pi cells answer from it, in order; cells past its end {after}."
        )

    def _forget_cassette_problem(self) -> bool:
        """After ``off``: the environment's unusable cassette no longer stops %%pi cells."""
        if self.cassette_problem is None:
            return False
        self.cassette_problem = None
        print("No cassette: %%pi cells ask Pi.")
        return True

    def _pi_resume(self, rest: list[str]) -> None:
        if len(rest) > 1:
            raise UsageError("Usage: %pi resume [SESSION] (a session id or file)")
        last = next((t.session_id for t in reversed(self.transcripts) if t.session_id), None)
        state = self.bridge.call(
            partial(self.session.resume, rest[0] if rest else None, last_session_id=last)
        )
        print(
            f"Resumed Pi session {state.session_id} ({state.message_count} messages): "
            f"{state.session_file}"
        )

    def _pi_export(self, rest: list[str]) -> None:
        if len(rest) != 1:
            raise UsageError("Usage: %pi export PATH.md | PATH.jsonl | PATH.html")
        path = notebook_path(rest[0])
        kind = path.suffix.lower()
        if kind not in (".md", ".jsonl", ".html"):
            raise UsageError(f"%pi export writes .md, .jsonl or .html files, not {path.name!r}.")
        if kind == ".html":
            written = self.bridge.call(self.session.export_html, str(path))
            print(
                f"Pi exported its whole session as HTML to {written}. It is Pi's own page: "
                "like Pi's session file it is not redacted (a credential a tool printed is in it)."
            )
            return
        if not self.transcripts:
            raise UsageError("Nothing to export yet: no Pi turn ran in this kernel.")
        text = to_markdown(self.transcripts) if kind == ".md" else to_jsonl(self.transcripts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"Cannot write {path}: {exc.strerror}.") from None
        print(f"Exported {len(self.transcripts)} turns to {rest[0]}.")

    def _cassette(self) -> str | None:
        """The cassette line of ``%pi status``."""
        if self.cassette_problem is not None:
            return self.cassette_problem
        if self.recorder is not None:
            return f"recording to {self.recorder.path.name} ({self.recorder.position} turns)"
        if self.player is not None:
            return (
                f"replaying {self.player.path.name} "
                f"({self.player.position} of {len(self.player.entries)} turns used)"
            )
        return None

    def _print_models(self) -> None:
        models = self.bridge.call(partial(self.session.models, refresh=True))
        state = self.bridge.call(self.session.state)
        if not models:
            print(f"Pi offers no models. {no_models_hint()}")
            return
        current = state.model_ref
        for model in sorted(models, key=lambda model: model.ref):
            mark = "*" if model.ref == current else " "
            reasoning = "reasoning" if model.reasoning else "no reasoning"
            print(f"{mark} {model.ref:40} {model.name or ''} ({reasoning})")


def notebook_path(text: str) -> Path:
    """A path the user typed: relative to the notebook's directory (the kernel's working
    directory), never to Pi's."""
    return Path.cwd() / Path(text).expanduser()


STDERR_LINES_SHOWN = 10
"""Lines of a dead Pi's stderr that ``%pi status`` shows."""


def context_text(context: ContextUsage) -> str:
    """``12,345 of 128,000 tokens (9.6%)``: how full the model's context window is."""
    if context.tokens is None:  # just compacted: Pi knows again after the next answer
        return f"unknown until the next answer (of {context.context_window:,} tokens)"
    percent = f" ({context.percent:.1f}%)" if context.percent is not None else ""
    return f"{context.tokens:,} of {context.context_window:,} tokens{percent}"


def format_status(
    status: SessionStatus,
    last_turn: Turn | None,
    last_exit: PiExited | None = None,
    cassette: str | None = None,
) -> str:
    """``%pi status`` as aligned lines; a Pi that died shows the end of its stderr."""
    lines = []
    if status.install is not None:
        lines.append(f"Pi:        {status.install.describe()}")
    if status.running and status.pid is not None:
        lines.append(f"Process:   running, pid {status.pid}")
    else:
        lines.append("Process:   not running (the next %%pi cell starts it)")
    if status.last_error:
        lines.append(f"Error:     {status.last_error}")
    state = status.state
    if state is not None:
        where = state.session_file or "in memory (nothing saved)"
        lines.append(f"Session:   {state.session_id or '?'} · {where}")
        lines.append(f"Model:     {state.model_ref or 'none'}")
        lines.append(f"Thinking:  {state.thinking_level}")
    stats = status.stats
    if stats is not None:
        tokens = stats.tokens
        lines.append(
            f"Totals:    {tokens_text(tokens.input, tokens.output)}, "
            f"{tokens.cache_read:,} cache read / {tokens.cache_write:,} cache write, "
            f"${stats.cost:.4f} (the whole conversation, as Pi counts it)"
        )
        if stats.context_usage is not None and stats.context_usage.context_window:
            lines.append(f"Context:   {context_text(stats.context_usage)}")
    warming = status.side_usage.get(CACHE_WARM)
    if warming is not None and warming.count:
        lines.append(f"Warming:   {warming_text(warming)} since this Pi started")
    lines.append(f"Cwd:       {status.cwd}")
    if last_turn is not None:
        usage = last_turn.usage
        lines.append(
            f"Last turn: {last_turn.status}, {tokens_text(usage.input, usage.output)}, "
            f"${usage.cost:.4f}, {last_turn.duration:.1f} s"
        )
    if cassette is not None:
        lines.append(f"Cassette:  {cassette}")
    if last_exit is not None:
        lines.append(f"Last exit: {last_exit.message}")
        tail = last_exit.stderr_tail[-STDERR_LINES_SHOWN:]
        lines.extend(f"  stderr | {line}" for line in tail or ["(nothing on stderr)"])
    return "\n".join(lines)
