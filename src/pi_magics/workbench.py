"""Pi's tools in the kernel: run Python in the user's namespace, read the kernel's history and
variables, propose a cell.

A call comes to the running cell as an errand (``notebook_tools``); the cell's loop, on the
kernel's main thread, hands it to ``Workbench.run``: Pi's code never runs beside the user's,
and an interrupt reaches it as it would reach the user's own code.
"""

from __future__ import annotations

import base64
import builtins
import dataclasses
import getpass
import os
import signal
import sys
import threading
import tokenize
import traceback
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

import IPython

from pi_kernel.kernel_tools.catalog import (
    HISTORY,
    PROPOSE_CELL,
    PYTHON,
    VARIABLES,
    Image,
    KernelToolCall,
    ToolReply,
)

from .credentials import Credentials
from .images import image_line, pixels_problem
from .namespace import variables

PART_LIMIT = 10_000
"""Characters of each part of a reply (output, result, error) that go back to Pi."""
HISTORY_CELLS = 10
"""Cells the history tool returns unless asked for more."""
HISTORY_LIMIT = 40_000
"""Characters of history in one reply."""
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
"""What Pi takes as image content; the first of these a display carries is sent."""
IMAGES_PER_CALL = 4
IMAGE_LIMIT = 4_000_000
"""Characters of base64 in one image sent to Pi (about 3 MB): a larger one is described."""
MADE_BY_PI = "pi_kernel"
"""The metadata key that marks outputs made by Pi's code (displays and results): a saved
notebook says which outputs Pi's code made; a replay, which runs nothing, does not show them."""
_IPYTHON_DIR = os.path.dirname(IPython.__file__)


TakesImages = Callable[[], bool]
"""Whether the turn's model takes image input (asked of Pi's model list, once, when needed)."""


def cut(text: str, limit: int = PART_LIMIT) -> str:
    """``text`` within ``limit`` characters: its start and its end, and a count of the cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… {len(text) - 2 * half:,} characters cut …\n{text[-half:]}"


class Workbench:
    """Runs kernel tool calls on the main thread, in ``shell`` (an IPython shell)."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.python_marker: str | None = None
        """A first line that makes a cell Python in this kernel, where cells are something
        else by default (the Pi kernel's ``%%py``: its own cells are prompts)."""
        self.errors: dict[int, str] = {}
        """The traceback of each user cell that failed, by execution count (bounded)."""
        self.running_code = False
        """Whether Pi's code runs now (``notebook_python``)."""
        self._refused = False
        self.credentials = Credentials()
        """The credential-like names whose values the read tools keep from Pi
        (``PiMagics.hidden_names`` adds to them)."""

    def note_cell(self, result: Any) -> None:
        """IPython's ``post_run_cell`` hook: keep a failed cell's traceback for the history."""
        error = result.error_in_exec or result.error_before_exec
        count = result.execution_count
        if error is not None and count is not None:
            self.errors[count] = cut(format_error(error))

    def run(
        self,
        call: KernelToolCall,
        on_clear: Callable[[], None] = lambda: None,
        *,
        images: TakesImages = lambda: False,
    ) -> ToolReply:
        """Do ``call``; ``images`` says whether the model takes image input (asked only when
        there is an image: figures then go back as images); ``on_clear`` is called when
        the code cleared the cell's outputs.  Raises KeyboardInterrupt when the user
        interrupted Pi's code (it was shown, and Pi is told by the caller); a
        KeyboardInterrupt the code raised itself is an error like any other."""
        if call.tool == PYTHON:
            code = _text_arg(call, "code")
            return self.python(code, on_clear, images=images, call_id=call.call_id)
        if call.tool == HISTORY:
            return self._without_credentials(self.history(call.args))
        if call.tool == VARIABLES:
            shell = self.shell
            hidden = getattr(shell, "user_ns_hidden", {})
            listed = variables(shell.user_ns, hidden, self.credentials.named)
            return self._without_credentials(ToolReply(listed))
        if call.tool == PROPOSE_CELL:
            return self.propose(_text_arg(call, "code"))
        return ToolReply(f"This kernel has no tool {call.tool!r}.", is_error=True)

    def python(
        self,
        code: str,
        on_clear: Callable[[], None] = lambda: None,
        *,
        images: TakesImages = lambda: False,
        call_id: str = "",
    ) -> ToolReply:
        shell = self.shell
        captured: list[str] = []
        displays: list[Mapping[str, Any]] = []
        source = f"{self.python_marker}\n{code}" if self.python_marker else code
        mark = {"tool": PYTHON, "call_id": call_id}
        # IPython reads the trailing ";" that hides a result from the last stored cell (the
        # %%pi cell here): Pi's own code decides.
        quiet = partial(_ends_with_semicolon, shell.displayhook, code)
        interrupts: list[int] = []
        with (
            _tee(captured),
            _displays(shell, displays, mark),
            _replaced(shell.displayhook, "quiet", quiet),
            _clears(shell, on_clear),
            _labelled_input(),
            _interrupts_noted(interrupts),
        ):
            self.running_code, self._refused = True, False
            try:
                result = shell.run_cell(source, store_history=False)
            finally:
                self.running_code = False
        if interrupts:  # the user's, even if the code caught it: the turn stops
            raise KeyboardInterrupt
        error = result.error_before_exec or result.error_in_exec
        parts = []
        output = "".join(captured)
        if output:
            parts.append(f"Output:\n{cut(output)}")
        if result.result is not None:
            parts.append(f"Result: {cut(_safe_repr(result.result))}")
            # An image as the last expression (the inline backend may show a figure itself).
            displays += [d for d in _image_of(shell, result.result) if d not in displays]
        sent: list[Image] = []
        for number, data in enumerate(displays, 1):
            parts.append(f"Display {number}: {self._display(data, sent, images)}")
        if error is not None:
            parts.append(f"Error:\n{cut(format_error(error))}")
        if not parts:
            parts.append("Ran without output.")
        failed = error is not None or self._refused
        return ToolReply("\n".join(parts), images=sent, is_error=failed)

    def refuse(self, why: str) -> None:
        """Something Pi's code asked of the notebook that it does not do while that code
        runs: ``why`` goes to the code's stderr, where it is, and the reply is an error."""
        print(why, file=sys.stderr)
        self._refused = True

    @staticmethod
    def _display(data: Mapping[str, Any], sent: list[Image], images: TakesImages) -> str:
        """A display's text for Pi; its image goes into ``sent`` when the model takes images."""
        text = cut(str(data.get("text/plain", "")), 2_000)
        kind = next((kind for kind in IMAGE_TYPES if isinstance(data.get(kind), str | bytes)), None)
        if kind is None:
            return text or f"({', '.join(data)})"
        raw = data[kind]  # base64 text, or the bytes themselves (IPython's formatters give both)
        encoded = raw if isinstance(raw, str) else base64.b64encode(raw).decode("ascii")
        decoded = base64.b64decode(encoded)
        # Size and hash: the transcript keeps this line, not the image (notebooks stay small).
        image = image_line(decoded, kind)
        too_many_pixels = pixels_problem(decoded)
        if not images():
            why = "not sent: this model takes no image input"
        elif too_many_pixels is not None:
            why = f"not sent: {too_many_pixels}"
        elif len(encoded) > IMAGE_LIMIT:
            why = "not sent: too large"
        elif len(sent) >= IMAGES_PER_CALL:
            why = f"not sent: at most {IMAGES_PER_CALL} images a call"
        else:
            sent.append(Image(encoded.replace("\n", ""), kind))
            why = f"sent as image {len(sent)}"
        return f"{text} ({image}; {why})".lstrip()

    def history(self, args: dict[str, Any]) -> ToolReply:
        shell = self.shell
        count = _int_arg(args, "count", HISTORY_CELLS)
        first, last = _int_arg(args, "first", None), _int_arg(args, "last", None)
        # The running cell's number: IPython (>= 9) counts a cell before running it.
        current = shell.execution_count - 1
        if first is not None or last is not None:
            start, stop = first or 1, (last or current - 1) + 1
        else:
            start, stop = max(1, current - count), current
        outputs = shell.user_ns.get("Out", {})
        entries = []
        for _session, number, source in shell.history_manager.get_range(
            start=start, stop=stop, raw=True
        ):
            entry = f"[{number}]\n{cut(source, 4_000)}"
            if number in outputs:
                entry += f"\nResult: {cut(_safe_repr(outputs[number]), 2_000)}"
            if number in self.errors:
                entry += f"\nError:\n{self.errors[number]}"
            entries.append(entry)
        if not entries:
            return ToolReply(f"No cells ran in the range {start}-{stop - 1}.")
        text = "\n\n".join(entries)
        if len(text) > HISTORY_LIMIT:
            text = "… earlier cells cut …\n" + text[-HISTORY_LIMIT:]
        return ToolReply(text)

    def _without_credentials(self, reply: ToolReply) -> ToolReply:
        """A read tool's reply without the values of credential-like names."""
        text = self.credentials.hide(reply.text, self.shell.user_ns)
        return dataclasses.replace(reply, text=text)

    def propose(self, code: str) -> ToolReply:
        marker = self.python_marker
        if marker is not None and code.lstrip().partition("\n")[0].strip() != marker:
            code = f"{marker}\n{code}"  # Python, where cells are prompts by default
        # IPython keeps one next-input payload per execution: a later proposal replaces it.
        self.shell.set_next_input(code, replace=False)
        lines = code.count("\n") + 1
        return ToolReply(
            f"Proposed: a new cell ({lines} line{'s' if lines != 1 else ''}) appears below the "
            "running one when it finishes. It was not run."
        )


def _image_of(shell: Any, value: Any) -> list[Mapping[str, Any]]:
    """The value's display bundle if it is an image (the cell showed it as the result: a
    PIL image, a figure with IPython's figure formats on); only such values are formatted."""
    if not any(hasattr(value, f"_repr_{kind}_") for kind in ("png", "jpeg", "mimebundle")) and (
        type(value).__module__.split(".")[0] != "matplotlib"
    ):
        return []
    try:
        data, _metadata = shell.display_formatter.format(value)
    except Exception:  # the cell already showed what failed; Pi has the repr
        return []
    return [data] if any(kind in data for kind in IMAGE_TYPES) else []


def _ends_with_semicolon(hook: Any, code: str) -> bool:
    try:
        return bool(hook.semicolon_at_end_of_expression(code))
    except (SyntaxError, tokenize.TokenError):  # the run itself reports what is wrong
        return False


def format_error(error: BaseException) -> str:
    """The error with its traceback, from the user's code on (IPython's own frames left out)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_IPYTHON_DIR):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb)).rstrip()


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<{type(value).__name__}: repr failed: {exc}>"


def _text_arg(call: KernelToolCall, name: str) -> str:
    value = call.args.get(name)
    return value if isinstance(value, str) else ""


def _int_arg(args: dict[str, Any], name: str, default: int | None) -> int | None:
    value = args.get(name)
    return value if isinstance(value, int) and value > 0 else default


class _Tee:
    """A stream that writes to the cell as before and keeps a copy for Pi."""

    def __init__(self, stream: Any, copy: Callable[[str], object]) -> None:
        self._stream = stream
        self._copy = copy

    def write(self, text: str) -> int:
        self._copy(text)
        written: int = self._stream.write(text)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def _displays(shell: Any, captured: list[Mapping[str, Any]], mark: object) -> Iterator[None]:
    """Keep a copy of every display the code makes (a plot, a table) while it is shown, and
    mark it and the code's result in their metadata (``MADE_BY_PI``) as made by Pi's code."""

    def copying(data: Mapping[str, Any], metadata: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("update"):
            captured.append(data)
        return publish(data, {**(metadata or {}), MADE_BY_PI: mark}, *args, **kwargs)

    def marking(data: Mapping[str, Any], metadata: Any = None) -> Any:
        return write_result(data, {**(metadata or {}), MADE_BY_PI: mark})

    publish = shell.display_pub.publish
    write_result = shell.displayhook.write_format_data
    with (
        _replaced(shell.display_pub, "publish", copying),
        _replaced(shell.displayhook, "write_format_data", marking),
    ):
        yield


@contextmanager
def _clears(shell: Any, after: Callable[[], None]) -> Iterator[None]:
    """``clear_output()`` in Pi's code clears the cell (Jupyter can clear nothing less), and
    then ``after`` shows the turn's blocks again: the code cannot wipe the turn's record."""
    clear = shell.display_pub.clear_output

    def clearing(*args: Any, **kwargs: Any) -> None:
        clear(*args, **kwargs)
        after()

    with _replaced(shell.display_pub, "clear_output", clearing):
        yield


CODE_ASKS = "Pi's code asks (the answer goes to that code, and Pi may read it): "
"""What starts the prompt of an ``input()`` in Pi's code: not a question from pi-kernel."""


@contextmanager
def _labelled_input() -> Iterator[None]:
    """``input()`` and ``getpass()`` in Pi's code prompt with ``CODE_ASKS`` first.  Looked up
    now: ipykernel puts its stdin-channel ``input`` into builtins for each cell."""
    ask, secret = builtins.input, getpass.getpass

    def asking(prompt: object = "") -> str:
        return ask(f"{CODE_ASKS}{prompt}")

    def asking_secret(prompt: str = "Password: ", stream: Any = None) -> str:
        return secret(f"{CODE_ASKS}{prompt}")

    with _replaced(builtins, "input", asking), _replaced(getpass, "getpass", asking_secret):
        yield


@contextmanager
def _interrupts_noted(interrupts: list[int]) -> Iterator[None]:
    """Note each SIGINT (the user's interrupt: the stop button, ``interrupt_kernel``) before
    it raises KeyboardInterrupt in Pi's code as it did: only then does the turn stop, not for
    a KeyboardInterrupt the code raises itself.  Signals reach the main thread alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGINT)

    def noting(signum: int, frame: types.FrameType | None) -> None:
        interrupts.append(signum)
        if callable(before):
            before(signum, frame)
        else:  # ignored or the default before: an interrupt still stops the code
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, noting)
    try:
        yield
    finally:
        # None: a handler not set from Python, which Python cannot set back.
        signal.signal(signal.SIGINT, signal.default_int_handler if before is None else before)


@contextmanager
def _replaced(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    """``owner.name`` is ``replacement`` for the block, then what it was."""
    own = name in vars(owner)  # set on the instance already (not by us)
    before = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        if own:
            setattr(owner, name, before)
        else:
            delattr(owner, name)


@contextmanager
def _tee(captured: list[str]) -> Iterator[None]:
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(stdout, captured.append), _Tee(stderr, captured.append)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr
