"""The conversation follows the notebook's cells: real kernels, the real Pi, and what the
scripted model received (the only stand-in).

Cells are named as JupyterLab names them (``cellId`` in the execute request's metadata).
"""

from __future__ import annotations

import json

import pytest

from pi_kernel.rpc import PiInstall
from pi_kernel.rpc.client import ENTRIES_SINCE
from pi_kernel.transcript import transcripts_in
from tests.support import scripted_llm as script
from tests.support.kernels import MAGICS, CellRun, KernelHarness, run_notebook
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM, user_texts


def ask(
    kernel: KernelHarness, llm: ScriptedLLM, cell: str, prompt: str
) -> tuple[list[str], CellRun]:
    """Run a ``%%pi`` cell; what the model was sent (its user messages), and the run."""
    llm.enqueue(script.text(f"Answer to {prompt}."))
    asked = len(llm.requests)
    run = kernel.execute(f"%%pi\n{prompt}", cell_id=cell)
    assert run.status == "ok", run.outputs
    assert len(llm.requests) == asked + 1
    return user_texts(llm.requests[-1]), run


def test_a_rerun_cell_is_asked_where_it_was_first_asked(kernel: KernelHarness, llm: ScriptedLLM):
    assert ask(kernel, llm, "a", "A one")[0] == ["A one"]
    assert ask(kernel, llm, "b", "B one")[0] == ["A one", "B one"]
    # A edited and run again: neither B nor A's first prompt.
    sent, run = ask(kernel, llm, "a", "A two")
    assert sent == ["A two"]
    a_count = run.reply["content"]["execution_count"]
    [record] = transcripts_in(run.outputs)
    assert record.place is not None
    assert record.place.asked_again
    assert "asked again from the start" in run.text()
    # B again: after A's new answer.
    sent, run = ask(kernel, llm, "b", "B two")
    assert sent == ["A two", "B two"]
    assert f"asked again after In [{a_count}], the earlier answer kept" in run.text()
    # A new cell follows where the conversation now stands.
    assert ask(kernel, llm, "c", "C one")[0] == ["A two", "B two", "C one"]


def test_linear_keeps_one_conversation(kernel: KernelHarness, llm: ScriptedLLM):
    assert kernel.execute("%config PiMagics.conversation = 'linear'").status == "ok"
    ask(kernel, llm, "a", "A one")
    ask(kernel, llm, "b", "B one")
    assert ask(kernel, llm, "a", "A two")[0] == ["A one", "B one", "A two"]


def test_run_all_twice_sends_each_cell_only_the_cells_above_it(
    kernel: KernelHarness, llm: ScriptedLLM
):
    cells = ["a", "b", "c", "d"]
    for _ in range(2):
        for index, cell in enumerate(cells):
            sent, _ = ask(kernel, llm, cell, f"Cell {cell}")
            assert sent == [f"Cell {above}" for above in cells[: index + 1]]


def test_the_earlier_answers_stay_in_pis_session_file(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    ask(kernel, llm, "a", "A one")
    ask(kernel, llm, "b", "B one")
    ask(kernel, llm, "a", "A two")
    [session_file] = pi_env.agent_dir.glob("sessions/**/*.jsonl")
    entries = [json.loads(line) for line in session_file.read_text().splitlines()]
    prompts = [
        entry["message"]["content"][0]["text"]
        for entry in entries
        if entry.get("type") == "message" and entry["message"]["role"] == "user"
    ]
    assert prompts == ["A one", "B one", "A two"]
    labels = [entry["label"] for entry in entries if entry.get("type") == "label"]
    assert labels == ["pi-kernel cell a", "pi-kernel cell b", "pi-kernel cell a"]


def test_a_resumed_session_keeps_each_cells_place(kernel: KernelHarness, llm: ScriptedLLM):
    ask(kernel, llm, "a", "A one")
    ask(kernel, llm, "b", "B one")
    ask(kernel, llm, "c", "C one")
    kernel.restart()
    assert kernel.execute("%load_ext pi_magics").status == "ok"
    assert kernel.execute("%pi resume").status == "ok"
    # B edited, after the restart: still asked after A's answer, not after C's.
    assert ask(kernel, llm, "b", "B two")[0] == ["A one", "B two"]
    assert ask(kernel, llm, "c", "C two")[0] == ["A one", "B two", "C two"]


def test_status_says_where_the_conversation_stands(kernel: KernelHarness, llm: ScriptedLLM):
    ask(kernel, llm, "a", "A one")
    _, run = ask(kernel, llm, "b", "B one")
    count = run.reply["content"]["execution_count"]
    status = kernel.execute("%pi status").text()
    follows = "the conversation follows them (2 in this session)"
    assert f"Cells:     {follows}; a new cell follows In [{count}]" in status
    # Without a cell id (as a terminal, or nbclient) the status says why it is linear.
    llm.enqueue(script.text("ok"))
    assert kernel.execute("%%pi\nNo id").status == "ok"
    status = kernel.execute("%pi status").text()
    assert "Cells:     the conversation is linear: this frontend does not say which cell" in status


@pytest.mark.contract
def test_each_pi_follows_the_cells_or_says_once_why_it_cannot(
    kernel: KernelHarness, llm: ScriptedLLM, pi_install: PiInstall
):
    runs = [ask(kernel, llm, cell, prompt) for cell, prompt in (("a", "A one"), ("b", "B one"))]
    sent, rerun = ask(kernel, llm, "a", "A two")
    notices = [
        run.text().count("The conversation stays linear") for _, run in [*runs, (sent, rerun)]
    ]
    if pi_install.at_least(*ENTRIES_SINCE):
        assert sent == ["A two"]
        assert notices == [0, 0, 0]
    else:
        assert sent == ["A one", "B one", "A two"]
        assert notices == [1, 0, 0]
        assert f"Pi {pi_install.version} cannot show its session tree" in runs[0][1].text()


def test_an_export_is_the_conversation_as_it_stands(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    for cell, prompt in (("a", "A one"), ("b", "B one"), ("b", "B two"), ("c", "C one")):
        ask(kernel, llm, cell, prompt)
    said = kernel.execute("%pi export talk.jsonl").text()
    assert (
        "Exported 3 turns to talk.jsonl (left out: 1 earlier answer of cells asked again)." in said
    )
    lines = (pi_env.cwd / "talk.jsonl").read_text().splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == ["A one", "B two", "C one"]


def test_an_interrupted_cell_keeps_its_place(kernel: KernelHarness, llm: ScriptedLLM):
    ask(kernel, llm, "a", "A one")
    llm.enqueue(script.text("word " * 200, pieces=200, delay=0.05))
    run, _ = kernel.execute_interrupted("%%pi\nB one", cell_id="b")
    assert "interrupted" in run.text()
    # B's first, cut-short answer is not in what B is asked with the second time.
    assert ask(kernel, llm, "b", "B two")[0] == ["A one", "B two"]


def test_the_tree_shows_each_cells_branches(kernel: KernelHarness, llm: ScriptedLLM):
    counts = []
    for cell, prompt in (("a", "A one"), ("b", "B one"), ("a", "A two")):
        counts.append(ask(kernel, llm, cell, prompt)[1].reply["content"]["execution_count"])
    tree = kernel.execute("%pi tree").text().splitlines()
    a, b = counts[2], counts[1]  # the page's numbers now
    assert tree[1:] == [f"  In [{a}]  A one", f"    In [{b}]  B one", f"* In [{a}]  A two"]


def test_a_recording_with_reruns_replays_the_same_answers_in_order(
    kernel: KernelHarness, llm: ScriptedLLM
):
    steps = [("a", "A one"), ("b", "B one"), ("a", "A two"), ("b", "B two")]
    assert kernel.execute("%pi record talk.jsonl").status == "ok"
    recorded = [
        transcripts_in(ask(kernel, llm, cell, prompt)[1].outputs)[0] for cell, prompt in steps
    ]
    assert kernel.execute("%pi record off").status == "ok"
    kernel.restart()
    assert kernel.execute("%load_ext pi_magics").status == "ok"
    assert kernel.execute("%pi replay talk.jsonl").status == "ok"
    asked = len(llm.requests)
    for (cell, prompt), first in zip(steps, recorded, strict=True):
        run = kernel.execute(f"%%pi\n{prompt}", cell_id=cell)
        [replayed] = transcripts_in(run.outputs)
        assert replayed.text == first.text
        assert replayed.place == first.place
    assert "asked again after In [" in run.text()  # the last re-run, as recorded
    assert len(llm.requests) == asked  # nothing was asked of the model


def test_a_headless_run_asks_in_the_notebooks_order_and_says_why_it_is_linear(
    llm: ScriptedLLM, pi_env: PiEnv
):
    # nbclient sends no cell id; it runs each cell once, in order, in a fresh kernel.
    prompts = ["One", "Two", "Three"]
    for prompt in prompts:
        llm.enqueue(script.text(f"Answer to {prompt}."))
    cells = ["%load_ext pi_magics", *(f"%%pi\n{prompt}" for prompt in prompts), "%pi status"]
    notebook = run_notebook(cells, env=pi_env.env, path=pi_env.cwd / "headless.ipynb")
    assert [user_texts(request) for request in llm.requests] == [
        prompts[: index + 1] for index in range(len(prompts))
    ]
    shown = json.dumps([cell.get("outputs", []) for cell in notebook.cells])
    assert "The conversation stays linear" not in shown  # nothing said into the saved cells
    status = notebook.cells[-1].outputs[0]["text"]
    assert "Cells:     the conversation is linear: this frontend does not say which cell" in status


def test_an_in_memory_session_follows_the_cells_too(kernel: KernelHarness, llm: ScriptedLLM):
    assert kernel.execute("%config PiMagics.pi_args = ['--no-session']").status == "ok"
    ask(kernel, llm, "a", "A one")
    ask(kernel, llm, "b", "B one")
    assert ask(kernel, llm, "a", "A two")[0] == ["A two"]
    assert ask(kernel, llm, "b", "B two")[0] == ["A two", "B two"]


def set_choice(kernel: KernelHarness, method: str, value: str) -> None:
    call = f"{MAGICS}.bridge.call({MAGICS}.session.{method}, {value!r})"
    assert kernel.execute(call).status == "ok"


@pytest.mark.contract
def test_a_cell_asked_again_keeps_the_notebooks_model_and_level(
    kernel: KernelHarness, llm: ScriptedLLM
):
    # A is asked of the reasoner, thinking high; then the notebook changes to the plain model.
    set_choice(kernel, "set_notebook_model", "scripted/reasoner")
    set_choice(kernel, "set_notebook_thinking_level", "high")
    ask(kernel, llm, "a", "A one")
    set_choice(kernel, "set_notebook_model", "scripted/plain")
    ask(kernel, llm, "b", "B one")
    # B again, after A's answer (where the reasoner was chosen): still the notebook's model.
    ask(kernel, llm, "b", "B two")
    assert llm.requests[-1]["model"] == "plain"
    status = kernel.execute("%pi status").text()
    assert "Model:     scripted/plain" in status
    assert "Thinking:  off" in status
