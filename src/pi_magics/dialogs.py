"""Pi's extension dialogs, put to the person at the notebook through Jupyter's stdin channel.

Pi holds a turn on ``select``/``confirm``/``input``/``editor`` until the client answers.
The bridge thread cannot ask: ipykernel's ``input()`` belongs to the thread running the cell.
So the UI handler hands the request to the running cell (an errand on the ``Desk``), whose
loop asks with ``input()`` and passes the answer back.  With no cell running, or a frontend
that takes no input (nbclient and papermill by default), the dialog is cancelled with a
notice: never a hang.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from typing import Any

from IPython.core.error import StdinNotImplementedError

from pi_kernel.rpc.client import DialogDeclined
from pi_kernel.rpc.protocol import ExtensionUIRequest, extension_ui_response

from .desk import Desk, Errand

Answer = Mapping[str, Any]


class Dialog(Errand[Answer]):
    """A request from Pi waiting in a cell for its answer."""

    def __init__(self, request: ExtensionUIRequest) -> None:
        super().__init__()
        self.request = request

    def refusal(self, reason: str) -> Exception:
        return DialogDeclined(reason)  # the client answers Pi with a cancellation


async def put_dialog(desk: Desk, request: ExtensionUIRequest) -> Answer:
    """The session's UI handler (with ``desk`` bound): the running cell asks."""
    return await desk.bring(Dialog(request), no_cell="no cell was running to ask in")


Reader = Callable[[str], str]


def ask(request: ExtensionUIRequest, read: Reader | None = None) -> Answer:
    """Put the dialog to the user with ``read`` (``input``); an empty answer cancels.

    Raises ``DialogDeclined`` when the frontend takes no input.  A wrong answer is said in
    one line and asked again.
    """
    print(_question(request))
    try:
        # Looked up now: ipykernel puts its stdin-channel input() in builtins for each cell.
        return _answer(request, read or builtins.input)
    except StdinNotImplementedError:
        raise DialogDeclined("this frontend does not take input (stdin is off)") from None
    except EOFError:
        raise DialogDeclined("there is no input to read an answer from") from None


def _question(request: ExtensionUIRequest) -> str:
    lines = [f"Pi asks: {request.title or request.method}"]
    if request.message:
        lines.append(request.message)
    if request.method == "select":
        options = request.options or []
        lines.extend(f"  {number}. {option}" for number, option in enumerate(options, 1))
    if request.method == "editor" and request.prefill:
        lines.append(f"(current text: {request.prefill})")
    if request.timeout:
        lines.append(f"(Pi stops waiting after {request.timeout / 1000:g} s)")
    return "\n".join(lines)


def _answer(request: ExtensionUIRequest, read: Reader) -> Answer:
    cancelled = extension_ui_response(request.id, cancelled=True)
    if request.method == "confirm":
        while True:
            reply = read("yes or no (empty cancels): ").strip().lower()
            if not reply:
                return cancelled
            if reply in ("y", "yes", "n", "no"):
                return extension_ui_response(request.id, confirmed=reply.startswith("y"))
            print(f"{reply!r} is neither yes nor no: answer y or n, or nothing to cancel.")
    if request.method == "select":
        options = request.options or []
        while True:
            reply = read(f"number 1-{len(options)} or the option (empty cancels): ").strip()
            if not reply:
                return cancelled
            if reply in options:
                return extension_ui_response(request.id, value=reply)
            if reply.isdigit() and 1 <= int(reply) <= len(options):
                return extension_ui_response(request.id, value=options[int(reply) - 1])
            print(f"{reply!r} is not one of the options: give its number or its exact text.")
    # input and editor: one line of text (the notebook has no multi-line editor to offer)
    hint = f" [{request.placeholder}]" if request.placeholder else ""
    reply = read(f"answer{hint} (empty cancels): ")
    return extension_ui_response(request.id, value=reply) if reply else cancelled
