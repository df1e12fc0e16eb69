"""Two notebooks open on one Jupyter server: each has its own Pi and its own conversation."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support import scripted_llm as script
from tests.support.lab import Lab
from tests.support.notebook_page import NotebookPage
from tests.support.processes import is_pi, processes_of
from tests.support.scripted_llm import ScriptedLLM


def test_two_notebooks_keep_two_pis_and_two_conversations(
    page: Page, lab: Lab, lab_llm: ScriptedLLM
):
    for name, fruit in (("apple.ipynb", "apple"), ("banana.ipynb", "banana")):
        lab.write_notebook(name, [f"Remember the word {fruit}.", "Which word?"], kernel="pi")
    lab_llm.enqueue(
        script.text("Noted: apple."),
        script.text("Noted: banana."),
        script.text("The word was apple."),
        script.text("The word was banana."),
    )
    apple = NotebookPage(page, lab, "apple.ipynb").open()
    banana = NotebookPage(page.context.new_page(), lab, "banana.ipynb").open()

    # Interleaved, so a shared session would mix the two conversations.
    expect(apple.run_and_wait(0)).to_contain_text("Noted: apple.")
    expect(banana.run_and_wait(0)).to_contain_text("Noted: banana.")
    expect(apple.run_and_wait(1)).to_contain_text("The word was apple.")
    expect(banana.run_and_wait(1)).to_contain_text("The word was banana.")

    apple_asks, banana_asks = (str(request["messages"]) for request in lab_llm.requests[2:])
    assert "apple" in apple_asks
    assert "banana" not in apple_asks
    assert "banana" in banana_asks
    assert "apple" not in banana_asks
    pis = [process for process in processes_of(lab.root.parent) if is_pi(process)]
    assert len(pis) == 2
