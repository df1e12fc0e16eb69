"""``%%pi`` and ``%pi``: Pi prompts from any IPython kernel.

``%%pi`` sends the cell to this notebook's Pi session and streams the answer into the cell;
``%pi`` has the subcommands of ``subcommands.SUBCOMMANDS``.  One ``PiMagics``
instance per shell owns one bridge thread and one ``PiSession``; loading the extension
starts Pi in the background so the first cell does not wait for it.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import observe

from pi_kernel import early, variables
from pi_kernel.agent_dir import no_models_hint
from pi_kernel.bridge import Bridge
from pi_kernel.early import PI_PATH_HINT
from pi_kernel.errors import CassetteError, ImageError, PiError, PiExited
from pi_kernel.kernel_tools.catalog import POLICIES, Policy, check_policy
from pi_kernel.records.cassette import Cassettes
from pi_kernel.records.redaction import redact, secret_values
from pi_kernel.rpc.feed import ClientNotice
from pi_kernel.rpc.protocol import (
    CACHE_WARM,
    ImageContent,
    ModelInfo,
    SessionState,
    SlashCommand,
)
from pi_kernel.rpc.usage import Followed, UsageTally
from pi_kernel.sandbox import Sandbox, kernel_sandbox
from pi_kernel.session import PiSession
from pi_kernel.transcript import Transcript, transcript_of
from pi_kernel.turn import Turn, TurnResult

from . import budget, slash
from .cell import CellTurn, Post, Request
from .cells import NO_CELL_ID, CellsSeen
from .connection import connection_file
from .credentials import Credentials
from .desk import Desk
from .dialogs import put_dialog
from .images import load_image
from .notebook_tools import NotebookTools
from .prompt import check_prompt, check_variable_name, interpolate
from .record_commands import RecordCommands
from .render import TurnDisplay
from .settings import NOTEBOOK, PiSettings
from .slash import terminal_command
from .status import format_status
from .subcommands import BY_NAME, HELP, NAMES, USAGE, usage_of
from .workbench import Workbench

if TYPE_CHECKING:
    from .widgets import Picker

NESTED_PI = (
    "%%pi does not run inside Pi's own code: this turn's Pi is waiting for that code, so "
    "the prompt was not sent."
)
"""What Pi's code reads when it calls ``%%pi`` (its output goes on around it)."""
TOOLLESS = (
    "{} cannot call tools: it read no file and ran no code for this answer, so what it says "
    "about files, data or results is invented. With a model that calls tools, Pi reads and "
    "runs what the question needs and answers from what it found."
)


def toolless_models() -> frozenset[str]:
    """The models the environment names as unable to call tools (the main command's demo
    model): their answers say so."""
    text = variables.read(variables.TOOLLESS_MODELS) or ""
    return frozenset(text.replace(",", " ").split())


def _warn_toolless(cell: CellTurn) -> None:
    """Say it in the cell when the model it is asked with cannot call tools."""
    model = cell.request.model
    if model in toolless_models():
        cell.turn.apply(ClientNotice(level="warning", message=TOOLLESS.format(model)))


WOKE = (
    "Pi had stopped after a while without a turn (PiMagics.idle_stop): started again on the "
    "same session."
)


def _tool_names(value: str | None) -> tuple[str, ...]:
    """``--ask bash,notebook_python``: the names, without blanks."""
    if value is None:
        return ()
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise UsageError("%%pi --ask: name the tools to ask about, e.g. --ask bash,edit or *.")
    return names


@magics_class
class PiMagics(PiSettings, RecordCommands):
    """The ``%%pi`` cell magic and the ``%pi`` line magic."""

    subcommands = NAMES
    """What ``%pi`` takes (the Pi kernel completes them and writes its banner from here)."""

    @observe("kernel_tools")
    def _kernel_tools_changed(self, change: Any) -> None:
        if hasattr(self, "tools"):
            self.tools.policy = check_policy(self.kernel_tools)

    @observe("hidden_names")
    def _hidden_names_changed(self, change: Any) -> None:
        workbench = getattr(self, "workbench", None)  # None until __init__ has made it
        if workbench is not None:
            workbench.credentials = Credentials(self.hidden_names)

    @observe("ask_before")
    def _ask_before_changed(self, change: Any) -> None:
        if hasattr(self, "tools"):
            self.tools.ask_before = tuple(self.ask_before)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.desk = Desk()
        """Where Pi's dialogs and kernel tool calls find the running cell."""
        self.tools = NotebookTools(self.desk, check_policy(self.kernel_tools))
        self.tools.ask_before = tuple(self.ask_before)
        self.spending = budget.Spending()
        """What this kernel's Pi has spent (``%pi budget``)."""
        self.workbench = Workbench(shell) if shell is not None else None
        if self.workbench is not None:
            self.workbench.credentials = Credentials(self.hidden_names)
        tools = self.tools if self.workbench is not None else None
        launch = (self.pi_path, tuple(self.pi_args), self._sandbox())
        started = early.take()
        self.started_early = started is not None
        """Whether the Pi kernel started this Pi before its imports (``pi_kernel.early``)."""
        if started is not None:
            # The Pi kernel started Pi before its imports: it gets the notebook's tools and
            # dialogs now, and gives way when the notebook's configuration asks for another.
            self.bridge, self.session = started.bridge, started.session
            started.lent.tools, started.lent.dialogs = tools, partial(put_dialog, self.desk)
            self.session.discovery_timeout = self.discovery_timeout
            pi = self.session.pi
            other = launch != (pi.pi_path, pi.args, pi.sandbox)
            pi.pi_path, pi.args, pi.sandbox = launch
            if other or not self.prewarm:
                self.bridge.call(self.session.stop)
        else:
            self.bridge = Bridge()
            self.session = self.bridge.enter(
                PiSession(
                    pi_path=self.pi_path,
                    args=self.pi_args,
                    ui_handler=partial(put_dialog, self.desk),
                    discovery_timeout=self.discovery_timeout,
                    tools=tools,
                    pi_path_hint=PI_PATH_HINT,
                )
            )
            self.session.pi.sandbox = launch[2]
        self.bridge.call(self.session.set_idle_stop, self.idle_stop)
        self.picker: Picker | None = None
        """Made by the first ``%pi picker``; later ones show the same widgets again."""
        self.last_turn: Turn | None = None
        self.last_exit: PiExited | None = None
        self._warming = Followed()
        """The Pi process and its cache-warming tally when the last cell's footer was drawn."""
        self.transcripts: list[Transcript] = []
        """Every turn this kernel showed, in order (for %pi export and %pi resume)."""
        self.cassettes = Cassettes()
        self._cassette_from_environment()
        self.cells = CellsSeen()
        """Which cell asks (the conversation follows the notebook's cells)."""
        if self.prewarm:  # nothing to do for a Pi started early: it is there, or starting
            self.bridge.submit(self.session.prewarm)
        if shell is not None:
            shell.events.register("pre_run_cell", self._before_cell)
            shell.events.register("post_run_cell", self._after_cell)

    @observe("pi_path", "pi_args")
    def _settings_changed(self, change: Any) -> None:
        if not hasattr(self, "session"):
            return  # configuration applied while __init__ runs: the session reads it itself
        self.session.pi.pi_path = self.pi_path
        self.session.pi.args = tuple(self.pi_args)
        self.bridge.call(self.session.stop)  # the next cell starts the Pi now configured

    @observe("sandbox", "sandbox_writable")
    def _sandbox_changed(self, change: Any) -> None:
        if hasattr(self, "session"):
            self.session.pi.sandbox = self._sandbox()
            self.bridge.call(self.session.stop)  # the next cell starts Pi inside or outside

    def _sandbox(self) -> Sandbox | None:
        """The sandbox the next Pi starts in (None: off); Jupyter's runtime folder and this
        kernel's connection file are hidden in it (they lead into the kernels)."""
        if not self.sandbox:
            return None
        writable = [Path(path).expanduser() for path in self.sandbox_writable]
        return kernel_sandbox(writable, connection_file())

    @observe("idle_stop")
    def _idle_stop_changed(self, change: Any) -> None:
        if hasattr(self, "session"):
            self.bridge.call(self.session.set_idle_stop, self.idle_stop)

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
                self.shell.events.unregister("pre_run_cell", self._before_cell)
                self.shell.events.unregister("post_run_cell", self._after_cell)
        if self.picker is not None:
            self.picker.close()
        self.cassettes.close()
        self.bridge.close()

    def _before_cell(self, info: Any) -> None:
        if self.desk.cell_running:
            return  # Pi's own code, run inside a %%pi cell: still that cell
        assert self.shell is not None
        # IPython has counted the cell already: its In [n] is one less.
        self.cells.starting(getattr(info, "cell_id", None), self.shell.execution_count - 1)

    def _after_cell(self, result: object) -> None:
        if self.desk.cell_running:
            return  # Pi's own code, run inside a %%pi cell: the cell's end comes later
        if self.workbench is not None:
            self.workbench.note_cell(result)
        # A cell may have restarted Pi (%pi restart, or a dead Pi replaced): the picker then
        # shows what the new one runs with, so it never disagrees with %pi status.
        if self.picker is not None:
            self.picker.follow()

    # -- what the Pi kernel uses (its whole view of the magics) ---------------------------

    def use_python_marker(self, marker: str) -> None:
        """Cells are prompts in this shell; ``marker`` as a first line makes one Python, so
        Pi's own code is run with it (else it would become a prompt for Pi)."""
        if self.workbench is not None:
            self.workbench.python_marker = marker

    def list_models(self) -> list[ModelInfo]:
        """The models Pi offers (asked once, then remembered): for completion and inspection."""
        return self.bridge.call(self.session.models)

    def list_commands(self) -> list[SlashCommand]:
        """Pi's slash commands (its own, its extensions', templates and skills)."""
        return self.bridge.call(self.session.commands)

    # -- %%pi --------------------------------------------------------------------------------

    @magic_arguments()
    @argument("--model", help="provider/model-id for this cell")
    @argument("--thinking", help="thinking level for this cell")
    @argument("--new", action="store_true", help="start a fresh Pi conversation first")
    @argument("--out", metavar="NAME", help="store the answer text in this variable")
    @argument("--quiet", action="store_true", help="render only the final state")
    @argument("--interpolate", action="store_true", help="replace {name} with variables")
    @argument(
        "--image",
        action="append",
        metavar="PATH_OR_NAME",
        help="send an image with the prompt: a PNG/JPEG/GIF/WebP file, or a variable holding "
        "a figure or image (repeatable)",
    )
    @argument(
        "--tools",
        metavar="POLICY",
        help=f"what Pi may do in this kernel for this cell: {', '.join(POLICIES)}",
    )
    @argument(
        "--ask",
        metavar="TOOLS",
        help="ask before these tools run in this cell, comma-separated (* for every tool)",
    )
    @cell_magic
    def pi(self, line: str, cell: str) -> None:
        """Send the cell to Pi and stream the answer into it."""
        if self.workbench is not None and self.workbench.running_code:
            self.workbench.refuse(NESTED_PI)
            return
        try:
            args = parse_argstring(self.pi, line)
        except ValueError as exc:  # shlex: an unclosed quote
            raise UsageError(f"%%pi: {exc} on the %%pi line (close the quote).") from None
        prompt = cell.strip()
        if not prompt:
            raise UsageError("The cell is empty: write the prompt for Pi below %%pi.")
        if args.out is not None:
            check_variable_name(args.out)
        if args.interpolate or self.interpolate:
            prompt = interpolate(prompt, self._user_ns)
        command = terminal_command(prompt)
        if command is not None and not self._known_to_pi(command.name):
            print(slash.run(command, self.session, self.bridge))
            return
        turn = self.run_prompt(
            prompt,
            model=args.model,
            thinking=args.thinking,
            new=args.new,
            quiet=args.quiet,
            tools=self._cell_policy(args.tools),
            ask=_tool_names(args.ask),
            images=args.image or (),
        )
        if args.out is not None:
            self._user_ns[args.out] = turn.text

    @staticmethod
    def _cell_policy(value: str | None) -> Policy | None:
        if value is None:
            return None
        try:
            return check_policy(value)
        except ValueError as exc:
            raise UsageError(f"%%pi --tools: {exc}") from None

    def _load_images(
        self, specs: Sequence[str], model: str | None
    ) -> list[tuple[ImageContent, str]]:
        """The ``--image`` images, each checked, before anything is sent."""
        if not specs:
            return []
        if not self._takes_images(model):
            raise UsageError(
                f"Pi does not list image input for {model or 'the current model'}: choose a "
                "model that takes images with --model, or leave out --image."
            )
        try:
            return [load_image(spec, self._user_ns) for spec in specs]
        except ImageError as exc:
            raise UsageError(str(exc)) from None

    def _takes_images(self, ref: str | None) -> bool:
        """Whether the turn's model takes image input, as Pi reports it (a figure Pi's code
        makes then goes back to it as an image, else as a description)."""
        if ref is None:
            return False
        try:
            model = self.bridge.call(self.session.find_model, ref)
        except PiError:
            return False  # the turn itself will say what is wrong with the model
        return "image" in model.input

    def _known_to_pi(self, name: str) -> bool:
        """Whether Pi has a command of this name (an extension's, a template's, a skill's)."""
        return any(command.name == name for command in self.list_commands())

    def run_prompt(
        self,
        prompt: str,
        *,
        model: str | None = None,
        thinking: str | None = None,
        new: bool = False,
        quiet: bool = False,
        tools: Policy | None = None,
        ask: Sequence[str] = (),
        images: Sequence[str] = (),
    ) -> Turn:
        """Run one turn (or answer it from the cassette being replayed) and render it;
        raise a short ``PiError`` or ``UsageError`` for expected failures."""
        if self.cassettes.problem is not None:
            raise UsageError(self.cassettes.problem)
        check_prompt(prompt)
        asleep = self.session.asleep_since is not None
        # The state is read first where the model must be known before anything is sent (a
        # cassette replayed, images) or Pi must be started (a failure to start is then all
        # the cell shows); else the run reads it: a round trip less before Pi has the prompt.
        state = None
        if self.cassettes.player is not None or images or not self.session.running:
            state = self.bridge.call(self.session.state)  # starts Pi (again, when asleep)
        secrets = secret_values(self.session.env or os.environ)
        # What the turn is asked with: the cell's options, else the notebook's settings.
        request = Request(prompt, model, thinking)
        if state is not None:
            request = request.asked_in(state)
        try:
            # A cassette holds what leaves the kernel: the prompt as redacted, like its transcript.
            recorded = self.cassettes.answer(redact(prompt, secrets), request.model, request.level)
        except CassetteError as exc:
            raise UsageError(str(exc)) from None
        if recorded is not None:
            return self._show_replayed(recorded, quiet=quiet, secrets=secrets)
        key = self.cells.next_key() if self.conversation == NOTEBOOK else None
        turn = partial(
            self.session.run_turn,
            prompt,
            model=model,
            thinking=thinking,
            new=new,
            before=state,
            cell=key,
        )
        return self._run_live(
            request,
            turn,
            state,
            secrets,
            quiet=quiet,
            tools=tools,
            ask=ask,
            images=images,
            key=key,
            woke=asleep,
        )

    def _run_live(
        self,
        request: Request,
        turn: Callable[..., Awaitable[TurnResult]],
        state: SessionState | None,
        secrets: frozenset[str],
        *,
        quiet: bool,
        tools: Policy | None,
        ask: Sequence[str],
        images: Sequence[str],
        key: str | None = None,
        woke: bool = False,
    ) -> Turn:
        """Ask Pi: ``turn`` is the session's ``run_turn`` for this cell, given the events'
        callback and the images; stream, then show the end and keep the transcript.
        ``state``: the session's, when read before (else the run reads it, and the request
        is completed from it as the run starts).
        ``key``: the cell's, when the conversation follows the notebook's cells; ``woke``:
        Pi had been stopped for being idle, and was started again for this turn."""
        limits = self._limits()
        spent = self._spent()
        reached = budget.over(limits, spent)
        if reached is not None:
            raise UsageError(budget.refusal(reached))
        sent = self._load_images(images, request.model)
        display = TurnDisplay(quiet=quiet, secrets=secrets, heartbeat=self.heartbeat)
        work = None
        if self.workbench is not None:
            # Whether the model takes images is asked of Pi only when an image is there to
            # send: a turn without one does no discovery.  By then the request names the
            # model (a turn whose run read the state is completed as the run starts).
            @cache
            def takes_images() -> bool:
                return self._takes_images(cell.request.model)

            work = partial(self.workbench.run, images=takes_images)
        cell = CellTurn(
            request,
            display,
            self.desk,
            work=work,
            ask_timeout=self.ask_timeout,
            state=state,
            on_state=_warn_toolless,
        )
        if woke:
            cell.turn.apply(ClientNotice(message=WOKE))
        if state is not None:
            _warn_toolless(cell)
        for _, line in sent:  # shown above the answer, and kept in the transcript
            cell.turn.apply(ClientNotice(message=f"Sent with the prompt: {line}"))
        images_sent = [image for image, _ in sent]

        def run_turn(post: Post) -> Awaitable[TurnResult]:
            return turn(post, images=images_sent, on_state=post if state is None else None)

        self.tools.cell_policy, self.tools.cell_ask = tools, tuple(ask)
        self.tools.limit = budget.run_limit(limits, spent) if limits.any else None
        try:
            future = cell.stream(self.bridge.submit, run_turn)
        finally:
            self.tools.cell_policy, self.tools.cell_ask, self.tools.limit = None, (), None
            self.spending.add_turn(cell.turn.usage)
        stopped, self.tools.stopped = self.tools.stopped, None
        for line in self.bridge.call(self.session.take_diagnostics):
            cell.turn.apply(ClientNotice(level="warning", message=f"Pi: {line}"))
        self.last_turn = cell.turn
        try:
            result = cell.outcome(future, stopped=stopped)
        except Exception as error:
            # The raised error is the message (IPython shows a PiError in a few lines);
            # what streamed before it stays visible above it.
            if cell.turn.visible_blocks:
                transcript = self._transcript(cell.turn, cell.state, secrets)
                cell.display.finish(cell.turn, transcript, budget=self._footer_budget())
            if isinstance(error, PiExited):
                # The notebook's own words for what happens next, on an error of its own.
                self.last_exit = PiExited(
                    error.message,
                    returncode=error.returncode,
                    stderr_tail=error.stderr_tail,
                    hint="The next %%pi cell starts a new Pi; %pi status shows its last stderr.",
                )
                raise self.last_exit from None
            raise
        self._place(cell.turn, key, result)
        self._finish(cell, secrets, result)
        return cell.turn

    def _place(self, turn: Turn, key: str | None, result: TurnResult | None) -> None:
        """Where the turn sat (its transcript keeps it), and, once, why the conversation
        could not follow the notebook's cells."""
        if result is None:
            return
        turn.place = self.cells.place(key, result)
        # Without cell ids (a terminal, a headless run: nbclient sends none, and runs each
        # cell once in a fresh kernel, where linear is the notebook's order) %pi status says
        # so; a Pi that cannot follow the cells is said in the cell, once.
        no_ids = key is None and self.conversation == NOTEBOOK
        self.cells.linear = NO_CELL_ID if no_ids else result.linear
        if result.linear is not None and (said := self.cells.linear_once(result.linear)):
            turn.apply(ClientNotice(level="info", message=said))
        if result.follow_problem:
            turn.apply(
                ClientNotice(
                    level="warning",
                    message=f"{result.follow_problem} The answer is whole; where it sits in "
                    "Pi's session is not known to the notebook's conversation.",
                )
            )

    def _transcript(
        self,
        turn: Turn,
        state: SessionState | None,
        secrets: frozenset[str],
        result: TurnResult | None = None,
    ) -> Transcript:
        """The turn's record, with every credential Pi could use taken out.  ``state``: the
        session's as the turn was asked (None: Pi failed before it could be read)."""
        install = self.session.install
        asked_in = result or state
        transcript = transcript_of(
            turn,
            pi_version=install.version if install else None,
            session_id=asked_in.session_id if asked_in else None,
            session_file=asked_in.session_file if asked_in else None,
        )
        return Transcript.model_validate(redact(transcript.model_dump(mode="json"), secrets))

    def _finish(
        self,
        cell: CellTurn,
        secrets: frozenset[str],
        result: TurnResult | None,
    ) -> None:
        """Show the turn's final state with its transcript; keep it (and record it)."""
        cell.turn.count_cache_warming(self._cache_warming_since_last_cell())
        transcript = self._transcript(cell.turn, cell.state, secrets, result)
        cell.display.finish(cell.turn, transcript, budget=self._footer_budget())
        self.transcripts.append(transcript)
        _, model, level = cell.request
        try:
            self.cassettes.keep(redact(cell.request.prompt, secrets), model, level, transcript)
        except CassetteError as exc:
            raise UsageError(str(exc)) from None

    def _limits(self) -> budget.Limits:
        """The budget in force; a budget the environment gave that cannot be read stops
        every turn until one is set here."""
        limits = self.budget_limits  # reading the settings finds a problem in the environment
        if self.budget_problem is not None:
            raise UsageError(self.budget_problem)
        return limits

    def _spent(self) -> UsageTally:
        """What this kernel's Pi has spent, with what it spent since it was last asked."""
        self.spending.follow(self.bridge.call(self.session.side_usage))
        return self.spending.total

    def _footer_budget(self) -> str | None:
        limits = self.budget_limits
        return budget.footer_part(limits, self._spent()) if limits.any else None

    def _cache_warming_since_last_cell(self) -> UsageTally | None:
        """Pi's idle prompt-cache refreshes since the last footer (the session's: a Pi
        stopped meanwhile counts too)."""
        added = self._warming.added(self.bridge.call(self.session.side_usage, CACHE_WARM))
        return added if added.count else None

    def _show_replayed(
        self, transcript: Transcript, *, quiet: bool, secrets: frozenset[str]
    ) -> Turn:
        turn = transcript.to_turn()
        TurnDisplay(quiet=quiet, secrets=secrets).finish(turn, transcript)
        self.last_turn = turn
        self.transcripts.append(transcript)
        return turn

    # -- %pi ---------------------------------------------------------------------------------

    @line_magic("pi")  # type: ignore[arg-type]  # IPython types the named form as Never
    @no_var_expand  # taken as written: IPython would turn "$0.50" into "0.5"
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
        tools = None
        if self.workbench is not None:
            tools = (self.tools.policy, self.tools.offered())
        cassette = self.cassettes.describe()
        guards = [
            ("Budget", self._budget_status()),
            ("Sandbox", self._sandbox_status()),
            ("Cells", self._conversation_status()),
        ]
        if self.idle_stop_problem is not None:
            guards.append(("Idle stop", self.idle_stop_problem))
        elif self.idle_stop:
            guards.append(("Idle stop", f"after {self.idle_stop:g} s without a turn"))
        if self.workbench is not None and self.tools.asked():
            asked = ", ".join(self.tools.asked())
            if self.tools.always:
                asked += f" (always approved now: {', '.join(sorted(self.tools.always))})"
            guards.append(("Ask first", asked))
        print(format_status(status, self.last_turn, self.last_exit, cassette, tools, guards))

    def _conversation_status(self) -> str:
        if self.conversation != NOTEBOOK:
            return "the conversation is linear (PiMagics.conversation): each asked at its end"
        if self.cells.linear is not None:
            return f"the conversation is linear: {self.cells.linear}"
        return self.cells.standing(self.session.conversation)

    def _sandbox_status(self) -> str:
        sandbox = self.session.pi.sandbox
        if sandbox is None:
            return "off (Pi's tools reach what you can; PiMagics.sandbox = True confines them)"
        writable = [self.session.cwd, "Pi's agent folder", *map(str, sandbox.writable)]
        return (
            f"on (bubblewrap): Pi sees only its own processes and writes only {', '.join(writable)}"
        )

    def _pi_budget(self, rest: list[str]) -> None:
        if rest:
            try:
                limits = budget.changed(self.budget_limits, rest)
            except ValueError as exc:
                raise UsageError(f"%pi budget: {exc}") from None
            self.budget_usd, self.budget_tokens = limits.usd, limits.tokens
        print(f"Budget: {self._budget_status()}")

    def _budget_status(self) -> str:
        line = budget.budget_line(self.budget_limits, self._spent())
        if self.budget_problem is not None:
            line += f" ({self.budget_problem})"
        return line

    def _pi_models(self, rest: list[str]) -> None:
        self._print_models()

    def _pi_picker(self, rest: list[str]) -> None:
        if self.picker is None:
            from .widgets import Picker  # ipywidgets, imported by the first picker only

            self.picker = Picker(self.session, self.bridge)
        self.picker.refresh()
        display(self.picker)

    def _pi_new(self, rest: list[str]) -> None:
        self.bridge.call(self.session.new_session)
        print("Started a fresh Pi conversation.")

    def _pi_tree(self, rest: list[str]) -> None:
        if rest:
            raise UsageError(usage_of("tree"))
        print(self.cells.tree_text(*self.bridge.call(self.session.conversation_tree)))

    def _pi_abort(self, rest: list[str]) -> None:
        self.bridge.call(self.session.abort)
        print("Asked Pi to stop.")

    def _pi_restart(self, rest: list[str]) -> None:
        client = self.bridge.call(self.session.restart)
        print(f"Restarted Pi (pid {client.pid}).")

    def _pi_resume(self, rest: list[str]) -> None:
        if len(rest) > 1:
            raise UsageError(f"{usage_of('resume')} (a session id or file)")
        last = next((t.session_id for t in reversed(self.transcripts) if t.session_id), None)
        state = self.bridge.call(
            partial(self.session.resume, rest[0] if rest else None, last_session_id=last)
        )
        print(
            f"Resumed Pi session {state.session_id} ({state.message_count} messages): "
            f"{state.session_file}"
        )

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
