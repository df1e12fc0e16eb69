"""Pi's code runs in the open: its block (the code) is on the page before the code runs and
what it prints or draws lands under its own block, in both kernels; the code shown is the
code run; its ``clear_output()`` cannot wipe the turn; its ``input()`` says whose it is."""

from __future__ import annotations

from typing import Any

import pytest

from pi_kernel.kernel_tools.catalog import PYTHON
from pi_magics.workbench import CODE_ASKS
from tests.support import scripted_llm as script
from tests.support.kernels import DISPLAY_MESSAGES, CellRun, KernelHarness
from tests.support.scripted_llm import ScriptedLLM, call, tool_result

TWO_CALLS = script.tool_calls(
    (PYTHON, {"code": "print('first-out')"}),
    (PYTHON, {"code": "import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()"}),
)


def page(run: CellRun) -> list[tuple[str, str]]:
    """The cell as the frontend shows it, in order: ``("block", its text)`` for each tool
    block, ``("out", what)`` for what Pi's code printed or drew; blanked outputs left out."""
    shown = []
    for output in run.outputs:
        data: dict[str, Any] = output.get("data", {})
        if output["output_type"] == "stream":
            shown.append(("out", output["text"]))
        elif "image/png" in data:
            shown.append(("out", "a plot"))
        elif str(data.get("text/plain", "")).startswith("[tool "):
            shown.append(("block", data["text/plain"]))
    return shown


def first_display_with(run: CellRun, text: str) -> int:
    """Where in the iopub messages the first display (or update of one) holding ``text``
    is."""
    for index, message in enumerate(run.messages):
        data = message["content"].get("data", {})
        if message["msg_type"] in DISPLAY_MESSAGES and text in str(data.get("text/plain", "")):
            return index
    raise AssertionError(f"no display holds {text!r}")


def first_stream_with(run: CellRun, text: str) -> int:
    for index, message in enumerate(run.messages):
        if message["msg_type"] == "stream" and text in message["content"]["text"]:
            return index
    raise AssertionError(f"no stream holds {text!r}")


def assert_each_output_under_its_block(kernel: KernelHarness, llm: ScriptedLLM, magic: str) -> None:
    """Pi prints in one call and plots in another, both in one message (``magic``: what
    makes a cell a prompt in this kernel)."""
    llm.enqueue(TWO_CALLS, script.text("Printed and plotted."))
    assert kernel.execute("%matplotlib inline").status == "ok"
    run = kernel.execute(f"{magic}Print, then plot.")
    assert run.status == "ok", run.outputs
    shown = page(run)
    blocks = [index for index, (kind, _) in enumerate(shown) if kind == "block"]
    first, second = blocks
    assert "print('first-out')" in shown[first][1]
    assert "plt.plot" in shown[second][1]
    assert shown[first + 1 : second] == [("out", "first-out\n")]
    assert shown[second + 1 :] == [("out", "a plot")]
    # On the wire too: each block went out before anything its code made.
    assert first_display_with(run, "print('first-out')") < first_stream_with(run, "first-out")


@pytest.mark.contract
def test_two_calls_outputs_land_under_their_own_blocks_with_magics(
    kernel: KernelHarness, llm: ScriptedLLM
):
    assert_each_output_under_its_block(kernel, llm, "%%pi\n")


def test_two_calls_outputs_land_under_their_own_blocks_in_the_pi_kernel(
    pi_kernel: KernelHarness, llm: ScriptedLLM
):
    assert_each_output_under_its_block(pi_kernel, llm, "")


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("hidden = 'run'\rx = 1", "hidden = 'run'␍x = 1"),
        ("print('a\\bb')\b\bz = 2", "␈␈z = 2"),
        ("s = '\x1b[2Jcleared'", "␛[2Jcleared"),
        ("access = 'user' # \u202e \u2066if admin\u2069 \u2066", "⟨U+202E⟩ ⟨U+2066⟩if admin"),
    ],
    ids=["carriage return", "backspace", "escape", "bidi override"],
)
def test_the_code_shown_is_the_code_run_with_its_control_characters_marked(
    shared_kernel: KernelHarness, shared_llm: ScriptedLLM, code: str, shown: str
):
    shared_llm.reset()
    shared_llm.enqueue(*call(PYTHON, "Ran.", code=code))
    run = shared_kernel.execute("%%pi\nRun it.")
    assert run.status == "ok", run.outputs
    (block,) = [text for kind, text in page(run) if kind == "block"]
    assert shown in block
    html = next(o["data"]["text/html"] for o in run.outputs if "[tool " in str(o.get("data")))
    for control in "\r\b\x1b\u202e\u2066":
        assert control not in block
        assert control not in html


def test_clear_output_in_pis_code_clears_its_outputs_but_not_the_turn(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(
        script.tool_calls((PYTHON, {"code": "print('before-clear')"})),
        *call(
            PYTHON,
            "Cleared.",
            code="from IPython.display import clear_output\nclear_output()\nprint('after-clear')",
        ),
    )
    run = kernel.execute("%%pi\nPrint, then clear.")
    assert run.status == "ok", run.outputs
    shown = page(run)
    blocks = [text for kind, text in shown if kind == "block"]
    assert len(blocks) == 2, shown  # both calls' blocks survive the clear
    assert "print('before-clear')" in blocks[0]
    assert "clear_output()" in blocks[1]
    assert ("out", "after-clear\n") in shown
    assert ("out", "before-clear\n") not in shown  # what Pi's code printed is what it cleared
    assert "Cleared." in run.text("text/markdown")
    assert "scripted/plain" in run.text()  # the footer, and the transcript with it


def test_input_in_pis_code_says_it_is_pis_codes_question(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(*call(PYTHON, "Got it.", code="name = input('Your name? ')\nprint(len(name))"))
    run = kernel.execute("%%pi\nAsk my name.", answer=lambda prompt: "Ada")
    assert run.status == "ok", run.outputs
    assert run.input_prompts == [f"{CODE_ASKS}Your name? "]
    assert "3" in tool_result(llm.requests[1])
    assert kernel.execute("assert name == 'Ada'").status == "ok"
