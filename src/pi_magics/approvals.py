"""Asking the person at the notebook before Pi's call runs (``PiMagics.ask_before``).

Pi's extension holds each call the user wants to approve (its ``tool_call`` hook, before any
tool runs, Pi's own ``bash`` and ``edit`` as well as the kernel tools) and asks the kernel;
the question reaches the running cell as an errand on the ``Desk``, as Pi's dialogs do, and
is put with Jupyter's input prompt beside the call's block, which shows what would run.

Whatever keeps the answer from coming is a no: a frontend that takes no input (nbclient,
papermill), ``PiMagics.ask_timeout`` passing, an interrupt, no cell running.  Pi is told the
user did not approve, and why; the turn goes on or ends as Pi decides.
"""

from __future__ import annotations

import builtins
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from IPython.core.error import StdinNotImplementedError

from pi_kernel.kernel_tools.catalog import KernelToolCall, Verdict

from .desk import Errand
from .dialogs import Reader
from .tool_blocks import call_details

YES, NO, ALWAYS = ("y", "yes"), ("n", "no"), ("a", "always")
QUESTION = "Allow? y = yes, n = no, a = always for this tool (until the kernel restarts): "
REASON = "Why not? (optional; Pi reads it): "


class Approval(Errand[Verdict]):
    """A call waiting in the cell for the user's yes or no."""

    def __init__(self, call: KernelToolCall) -> None:
        super().__init__()
        self.call = call


def not_approved(tool: str, why: str) -> Verdict:
    """A no that was never answered (no input, no time, no cell): Pi hears why."""
    return Verdict(False, f"The user did not approve this {tool} call: {why}.", why)


class _NoAnswer(BaseException):
    """``ask_timeout`` passed.  A BaseException: ipykernel's input loop logs and swallows an
    Exception, and only this gets out of it."""


def ask_approval(
    call: KernelToolCall,
    read: Reader | None = None,
    *,
    timeout: float = 0.0,
    code_shown: bool = True,
) -> Verdict:
    """Put ``call`` to the user with ``read`` (``input``) and return their answer; no
    frontend input or no answer within ``timeout`` seconds (0: no limit) is a no.
    ``code_shown``: the call's block above already shows its code (a streaming cell)."""
    print(f"Pi wants to run {call.tool}.")
    details = call_details(call.tool, call.args, code_shown=code_shown)
    if details:
        print(details)
    try:
        with _deadline(timeout):
            # Looked up now: ipykernel puts its stdin-channel input() in builtins for each cell.
            return _answer(call.tool, read or builtins.input)
    except StdinNotImplementedError:
        return not_approved(call.tool, "this frontend takes no input, so no one could be asked")
    except EOFError:
        return not_approved(call.tool, "there was no input to read an answer from")
    except _NoAnswer:
        return not_approved(call.tool, f"no answer within {timeout:g} s")


def _answer(tool: str, read: Reader) -> Verdict:
    while True:
        reply = read(QUESTION).strip().lower()
        if reply in YES:
            return Verdict(True)
        if reply in ALWAYS:
            return Verdict(True, always=True)
        if reply in NO:
            reason = read(REASON).strip()
            said = f" Their reason: {reason}" if reason else ""
            why = f"the user said no: {reason}" if reason else "the user said no"
            return Verdict(False, f"The user did not approve this {tool} call.{said}", why)
        print(f"{reply!r} is not an answer here: y (run it), n (do not) or a (always).")


def verdict_text(verdict: Verdict) -> str:
    """What the call's block says (and its transcript keeps) about the user's answer."""
    if verdict.always:
        return "approved, and every later call of this tool until the kernel restarts"
    return "approved" if verdict.allowed else f"not approved: {verdict.why}"


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise ``_NoAnswer`` in the main thread after ``seconds`` (a signal is the one thing
    that reaches a thread blocked in ipykernel's input loop; other threads get no limit)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise _NoAnswer

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
