"""pi-kernel in a real JupyterLab, driven through Chromium as a person would use it."""

from __future__ import annotations

import re

import nbformat
import pytest
from playwright.sync_api import Locator, Page, expect

from pi_kernel.kernel_tools.catalog import PROPOSE_CELL, PYTHON
from pi_kernel.transcript import transcripts_in
from tests.e2e.fixtures import ARTIFACTS
from tests.support import scripted_llm as script
from tests.support.lab import Lab
from tests.support.notebook_page import NotebookPage
from tests.support.scripted_llm import ScriptedLLM

# One JupyterLab and one browser for the module: its tests stay on one xdist worker.
pytestmark = pytest.mark.xdist_group("lab")

SLOW_ANSWER = "Hello there: this answer is **streamed** in a dozen small pieces, one at a time."
SCREENSHOT = "pi-cell.png"
"""A %%pi cell as JupyterLab shows it, for the README (scripts/screenshot.sh)."""
FOOTER = "tokens"  # the footer line ("… 12 in / 34 out tokens …") comes last


def options(select: Locator) -> list[str]:
    # ipywidgets writes option labels with no-break spaces.
    return [text.replace("\xa0", " ") for text in select.locator("option").all_inner_texts()]


def choose(select: Locator, label: str) -> None:
    select.select_option(index=options(select).index(label))


def assert_streamed_progressively(states: list[str]) -> None:
    """At least two different partial answers were on screen before the final one."""
    final = states[-1]
    partial = {state for state in states[:-1] if state.strip() and FOOTER not in state}
    assert len(partial) >= 2, states
    assert all(state != final for state in partial)


def streams_the_slow_answer(notebook: NotebookPage, index: int) -> None:
    """Run cell ``index``, whose answer is ``SLOW_ANSWER``: it streams in, then renders."""
    notebook.run(index)
    assert_streamed_progressively(notebook.watch(index, until=FOOTER))
    notebook.wait_done(index)
    answer = notebook.output(index).locator("[data-mime-type='text/markdown'] strong")
    expect(answer).to_have_text("streamed")


def test_a_pi_kernel_cell_streams_renders_markdown_and_shows_tools(
    page: Page, lab: Lab, lab_llm: ScriptedLLM
):
    lab.write_notebook("stream.ipynb", ["Say hello slowly.", "Run echo."], kernel="pi")
    lab_llm.enqueue(script.text(SLOW_ANSWER, pieces=12, delay=0.15))
    lab_llm.enqueue(*script.tool_then_answer(command="echo from-the-tool", answer="Echo **ran**."))
    notebook = NotebookPage(page, lab, "stream.ipynb").open()

    notebook.run(0)
    assert_streamed_progressively(notebook.watch(0, until=FOOTER))
    notebook.wait_done(0)
    answer = notebook.output(0).locator("[data-mime-type='text/markdown']")
    expect(answer.locator("strong")).to_have_text("streamed")

    tool_cell = notebook.run_and_wait(1)
    expect(tool_cell).to_contain_text("echo from-the-tool")
    expect(tool_cell.locator("pre")).to_contain_text("from-the-tool")
    expect(tool_cell.locator("[data-mime-type='text/markdown'] strong")).to_have_text("ran")


def test_the_pi_magic_streams_in_a_python_kernel(page: Page, lab: Lab, lab_llm: ScriptedLLM):
    lab.write_notebook(
        "magic.ipynb", ["%load_ext pi_magics", "%%pi\nSay hello slowly."], kernel="python3"
    )
    lab_llm.enqueue(script.text(SLOW_ANSWER, pieces=12, delay=0.15))
    notebook = NotebookPage(page, lab, "magic.ipynb").open()
    notebook.run_and_wait(0)

    streams_the_slow_answer(notebook, 1)
    # What a %%pi cell looks like, from this real run: scripts/screenshot.sh commits it.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    notebook.cell(1).screenshot(path=str(ARTIFACTS / SCREENSHOT))


def test_pis_code_draws_a_plot_on_the_page_and_its_proposal_becomes_a_cell(
    page: Page, lab: Lab, lab_llm: ScriptedLLM
):
    plot = "import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nplt.title('drawn by Pi')"
    lab.write_notebook(
        "tools.ipynb",
        ["%load_ext pi_magics", "%%pi\nPlot it.", "%%pi\nPropose a cell."],
        kernel="python3",
    )
    lab_llm.enqueue(script.tool_calls((PYTHON, {"code": plot})), script.text("Plotted."))
    lab_llm.enqueue(
        script.tool_calls((PROPOSE_CELL, {"code": "proposed_by_pi = 1"})), script.text("Here.")
    )
    notebook = NotebookPage(page, lab, "tools.ipynb").open()
    notebook.run_and_wait(0)

    output = notebook.run_and_wait(1)
    expect(output.locator("img[src^='data:image/png']")).to_have_count(1)
    expect(output).to_contain_text("Plotted.")
    # The plot is under the block that shows the code that drew it.
    assert output_index(output, "plt.title") < output_index(output, "img")

    notebook.run_and_wait(2)
    # JupyterLab puts the proposal into a new cell below the one that ran: not run.
    expect(notebook.cell(3).locator(".cm-content")).to_have_text("proposed_by_pi = 1")
    expect(notebook.cell(3).locator(".jp-InputArea-prompt")).not_to_have_text(re.compile(r"\d"))


def output_index(output: Locator, what: str) -> int:
    """Which of the cell's outputs (in page order) holds ``what``: text, or ``img``."""
    children = output.locator(".jp-OutputArea-child")
    for index in range(children.count()):
        child = children.nth(index)
        found = child.locator("img").count() if what == "img" else what in child.inner_text()
        if found:
            return index
    raise AssertionError(f"no output holds {what!r}")


def test_an_approval_is_answered_in_the_input_box_with_the_code_on_the_page(
    page: Page, lab: Lab, lab_llm: ScriptedLLM
):
    lab.write_notebook(
        "approve.ipynb",
        [
            "%load_ext pi_magics",
            f"%config PiMagics.ask_before = [{PYTHON!r}]",
            "%%pi\nSet a value.",
            "approved_in_lab",
        ],
        kernel="python3",
    )
    code = "approved_in_lab = 'yes, in the lab'"
    lab_llm.enqueue(script.tool_calls((PYTHON, {"code": code})), script.text("Set."))
    notebook = NotebookPage(page, lab, "approve.ipynb").open()
    notebook.run_and_wait(0)
    notebook.run_and_wait(1)

    notebook.run(2)
    box = notebook.output(2).locator(".jp-Stdin-input")
    expect(box).to_be_visible(timeout=30_000)
    # Before any answer: the code is on the page, above the question.
    output = notebook.output(2)
    expect(output).to_contain_text(code)
    expect(output).to_contain_text("Pi wants to run notebook_python.")
    assert output_index(output, code) < output_index(output, "Pi wants to run")
    box.fill("y")
    box.press("Enter")
    notebook.wait_done(2)
    expect(output).to_contain_text("approved")
    expect(output).to_contain_text("Set.")
    expect(notebook.run_and_wait(3)).to_contain_text("yes, in the lab")


def test_the_picker_offers_pis_models_and_the_chosen_models_levels(
    page: Page, lab: Lab, lab_llm: ScriptedLLM
):
    lab.write_notebook(
        "picker.ipynb",
        ["%load_ext pi_magics", "%pi picker", "%%pi\nThink it over."],
        kernel="python3",
    )
    lab_llm.enqueue(script.thinking("Weighing it.", "Thought it over."))
    notebook = NotebookPage(page, lab, "picker.ipynb").open()
    notebook.run_and_wait(0)
    picker = notebook.run_and_wait(1)
    model, thinking = picker.locator("select").nth(0), picker.locator("select").nth(1)
    expect(model).to_be_enabled()
    assert options(model) == [
        "scripted / Scripted deep",
        "scripted / Scripted plain",
        "scripted / Scripted reasoner",
    ]
    assert options(thinking) == ["off"]  # plain: no reasoning

    choose(model, "scripted / Scripted reasoner")
    levels = ["off", "minimal", "low", "medium", "high"]
    expect(thinking.locator("option")).to_have_text(levels)
    choose(thinking, "high")
    expect(picker).to_contain_text("scripted/reasoner · thinking high")

    answer = notebook.run_and_wait(2)
    expect(answer).to_contain_text("scripted/reasoner · thinking high")
    [request] = lab_llm.requests
    assert (request["model"], request["reasoning_effort"]) == ("reasoner", "high")


@pytest.mark.timing
def test_the_stop_button_interrupts_a_slow_stream_and_the_next_cell_works(
    page: Page, lab: Lab, lab_llm: ScriptedLLM
):
    lab.write_notebook("stop.ipynb", ["Tell a long story.", "Still there?"], kernel="pi")
    lab_llm.enqueue(script.text("word " * 400, pieces=200, delay=0.1))
    lab_llm.enqueue(script.text("Yes, still here."))
    notebook = NotebookPage(page, lab, "stop.ipynb").open()

    notebook.run(0)
    notebook.watch(0, until="word word")
    notebook.interrupt()
    notebook.wait_done(0, timeout=10_000)
    expect(notebook.output(0)).to_contain_text("interrupted")
    lab_llm.wait_for_cut_streams(1)

    expect(notebook.run_and_wait(1)).to_contain_text("Yes, still here.")


PAYLOAD = (
    "Payloads: <script>window.__piPwned = 'script'</script> "
    '<img src="x" onerror="window.__piPwned = \'img\'"> '
    "<svg onload=\"window.__piPwned = 'svg'\"></svg> "
    "[a link](javascript:window.__piPwned='link') end."
)
CONTROL = (
    "%%py\nfrom IPython.display import HTML\n"
    'HTML(\'<img src="x" onerror="window.__piControl = 1">\')'
)


def pwned(page: Page) -> object:
    return page.evaluate("window.__piPwned")


def test_model_and_tool_output_execute_nothing_live_or_reopened(
    page: Page, lab: Lab, lab_llm: ScriptedLLM
):
    lab.write_notebook("payload.ipynb", [CONTROL, "Show me.", "Echo it."], kernel="pi")
    lab_llm.enqueue(script.text(PAYLOAD))
    command = "echo '<img src=y onerror=\"window.__piPwned=1\"><script>window.__piPwned=2</script>'"
    lab_llm.enqueue(*script.tool_then_answer(command=command, answer=PAYLOAD))
    notebook = NotebookPage(page, lab, "payload.ipynb").open()

    # The control: HTML that Python displays on purpose does run in this page, so the flag
    # would be set if Pi's output were ever shown as HTML.
    notebook.run_and_wait(0)
    page.wait_for_function("window.__piControl === 1")
    notebook.run_and_wait(1)
    notebook.run_and_wait(2)
    for link in page.locator("a:has-text('a link')").all():  # disarmed, if a link at all
        link.click(no_wait_after=True)
    page.wait_for_timeout(500)  # an image's error event has long fired by then
    assert pwned(page) is None
    for index in (1, 2):
        expect(notebook.output(index)).to_contain_text("onerror")  # shown, as text
    notebook.save()

    reopened = NotebookPage(page.context.new_page(), lab, "payload.ipynb").open()
    expect(reopened.output(2)).to_contain_text("scripted/plain")
    reopened.page.wait_for_timeout(500)
    assert pwned(reopened.page) is None
    expect(reopened.output(2)).to_contain_text("onerror")


def test_answers_and_transcripts_survive_save_close_and_reopen(
    page: Page, lab: Lab, lab_llm: ScriptedLLM
):
    path = lab.write_notebook("saved.ipynb", ["Run echo."], kernel="pi")
    lab_llm.enqueue(*script.tool_then_answer(command="echo kept", answer="It **printed** kept."))
    notebook = NotebookPage(page, lab, "saved.ipynb").open()
    notebook.run_and_wait(0)
    notebook.save()
    page.close()
    lab.shutdown_kernels()

    saved = nbformat.read(path, as_version=4)
    [transcript] = transcripts_in(saved.cells[0].outputs)
    assert transcript.text == "It **printed** kept."
    reopened = NotebookPage(page.context.new_page(), lab, "saved.ipynb").open()
    output = reopened.output(0)
    expect(output.locator("[data-mime-type='text/markdown'] strong")).to_have_text("printed")
    expect(output).to_contain_text("echo kept")
    expect(output).to_contain_text("scripted/plain · thinking off")


def test_an_edited_cell_run_again_is_asked_where_it_stood(
    page: Page, lab: Lab, lab_llm: ScriptedLLM
):
    lab.write_notebook(
        "follows.ipynb",
        ["%load_ext pi_magics", "%%pi\nA one", "%%pi\nB one", "%%pi\nC one"],
        kernel="python3",
    )
    notebook = NotebookPage(page, lab, "follows.ipynb").open()
    notebook.run_and_wait(0)
    for index in (1, 2, 3):
        lab_llm.enqueue(script.echo())  # each answer says what the model was sent
        notebook.run_and_wait(index)
    expect(notebook.output(3)).to_contain_text("Sent: A one / B one / C one.")

    notebook.edit(1, ["%%pi", "A two"])
    for index in (1, 2, 3):
        lab_llm.enqueue(script.echo())
        notebook.rerun_and_wait(index)
    expect(notebook.output(1)).to_contain_text("Sent: A two.")
    expect(notebook.output(2)).to_contain_text("Sent: A two / B one.")
    expect(notebook.output(3)).to_contain_text("Sent: A two / B one / C one.")
    expect(notebook.output(1)).to_contain_text("asked again from the start")
    expect(notebook.output(3)).to_contain_text("asked again after In [")


def test_notebook_7_streams_picks_and_draws(page: Page, lab: Lab, lab_llm: ScriptedLLM):
    # The same server serves Jupyter Notebook 7 beside JupyterLab: one notebook, its UI.
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('drawn in Notebook 7')"
    lab.write_notebook(
        "seven.ipynb",
        ["%load_ext pi_magics", "%%pi\nSay hello slowly.", "%pi picker", "%%pi\nPlot it."],
        kernel="python3",
    )
    lab_llm.enqueue(script.text(SLOW_ANSWER, pieces=12, delay=0.15))
    lab_llm.enqueue(script.tool_calls((PYTHON, {"code": plot})), script.text("Plotted."))
    notebook = NotebookPage(page, lab, "seven.ipynb", app="notebook").open()
    assert "/notebooks/seven.ipynb" in page.url  # not JupyterLab: no status bar here
    expect(page.locator("#jp-main-statusbar")).to_have_count(0)
    notebook.run_and_wait(0)

    streams_the_slow_answer(notebook, 1)

    picker = notebook.run_and_wait(2)
    model = picker.locator("select").nth(0)
    expect(model).to_be_enabled()
    assert "scripted / Scripted reasoner" in options(model)

    output = notebook.run_and_wait(3)
    expect(output.locator("img[src^='data:image/png']")).to_have_count(1)
    expect(output).to_contain_text("Plotted.")
    assert output_index(output, "plt.title") < output_index(output, "img")
