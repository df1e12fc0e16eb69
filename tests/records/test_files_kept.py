"""Files people own are never truncated or replaced unasked; what leaves the kernel is
redacted.  Real kernels, the real Pi (issue 18: careless and hostile use)."""

from __future__ import annotations

import json

from pi_kernel import variables
from pi_kernel.records.cassette import read_cassette
from tests.support import scripted_llm as script
from tests.support.html_safety import PAYLOADS, active_content
from tests.support.kernels import KernelHarness, running_kernel, short_failure
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
SECRET = "tok-prompt-8e41c2d9f0"


def test_recording_refuses_a_path_that_is_not_a_cassette_and_keeps_the_file(
    kernel: KernelHarness, pi_env: PiEnv
):
    notebook = pi_env.cwd / "analysis.ipynb"
    notebook.write_text(NOTEBOOK)
    notes = pi_env.cwd / "notes.jsonl"
    notes.write_text('{"my": "data"}\n')
    assert "give a path ending in .jsonl" in short_failure(
        kernel.execute("%pi record analysis.ipynb"), lines=1
    )
    assert "notes.jsonl exists and is not a cassette" in short_failure(
        kernel.execute("%pi record notes.jsonl"), lines=1
    )
    assert notebook.read_text() == NOTEBOOK
    assert notes.read_text() == '{"my": "data"}\n'
    assert "Not recording" in kernel.execute("%pi record off").error_text


def test_the_environment_cannot_make_the_extension_truncate_a_notebook(pi_env: PiEnv):
    notebook = pi_env.cwd / "tour.ipynb"
    notebook.write_text(NOTEBOOK)
    env = {**pi_env.env, variables.RECORD: "tour.ipynb"}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        loaded = kernel.execute("%load_ext pi_magics")
        assert "give a path ending in .jsonl" in loaded.text()
        assert "give a path ending in .jsonl" in kernel.execute("%%pi\nHello").error_text
    assert notebook.read_text() == NOTEBOOK


def test_a_cassette_is_replaced_at_the_first_turn_and_always_whole(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    llm.enqueue(script.text("First."), script.text("Second."))
    cassette = pi_env.cwd / "run.jsonl"
    kernel.execute("%pi record run.jsonl")
    assert kernel.execute("%%pi\nOne.").status == "ok"
    kernel.execute("%pi record off")
    recorded = cassette.read_text()

    started = kernel.execute("%pi record run.jsonl")
    assert "replaced at the first turn" in started.text()
    assert cassette.read_text() == recorded  # nothing replaced yet
    kernel.execute("%pi record off")
    assert cassette.read_text() == recorded  # recording nothing replaced nothing

    kernel.execute("%pi record run.jsonl")
    assert kernel.execute("%%pi\nTwo.").status == "ok"
    [entry] = read_cassette(cassette)  # before record off: already a whole cassette
    assert entry.request.prompt == "Two."
    assert not list(pi_env.cwd.glob(".run.jsonl*"))  # no temporary or lock file left


def test_two_kernels_cannot_record_to_one_cassette(kernel: KernelHarness, pi_env: PiEnv):
    assert kernel.execute("%pi record shared.jsonl").status == "ok"
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as other:
        other.execute("%load_ext pi_magics")
        assert "Another kernel is recording to shared.jsonl" in short_failure(
            other.execute("%pi record shared.jsonl"), lines=1
        )
    kernel.execute("%pi record off")
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as later:
        later.execute("%load_ext pi_magics")
        assert later.execute("%pi record shared.jsonl").status == "ok"  # the lock went


def test_export_replaces_only_its_own_files_unless_told(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    llm.enqueue(script.text("Exported."))
    notes = pi_env.cwd / "notes.md"
    notes.write_text("# My own notes\n")
    kernel.execute("%pi record run.jsonl")
    assert kernel.execute("%%pi\nSay something.").status == "ok"

    refused = short_failure(kernel.execute("%pi export notes.md"), lines=1)
    assert "notes.md exists and pi-kernel did not write it" in refused
    assert "--replace" in refused
    assert notes.read_text() == "# My own notes\n"
    assert "is this notebook's cassette" in short_failure(
        kernel.execute("%pi export run.jsonl"), lines=1
    )
    assert len(read_cassette(pi_env.cwd / "run.jsonl")) == 1

    assert kernel.execute("%pi export turns.md").status == "ok"
    assert kernel.execute("%pi export turns.md").status == "ok"  # its own: replaced
    assert kernel.execute("%pi export turns.jsonl").status == "ok"
    assert kernel.execute("%pi export turns.jsonl").status == "ok"
    assert kernel.execute("%pi export notes.md --replace").status == "ok"
    assert "Exported." in notes.read_text()


def test_a_secret_in_a_prompt_is_redacted_in_the_cassette_and_still_replays(
    pi_env: PiEnv, llm: ScriptedLLM
):
    pi_env.env["SCRIPTED_SECRET_TOKEN"] = SECRET
    llm.enqueue(script.text("Noted."))
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
        kernel.execute("%load_ext pi_magics\nimport os\ntok = os.environ['SCRIPTED_SECRET_TOKEN']")
        kernel.execute("%pi record secret.jsonl")
        assert kernel.execute("%%pi --interpolate\nRemember {tok}.").status == "ok"
        kernel.execute("%pi record off")
        cassette = (pi_env.cwd / "secret.jsonl").read_text()
        assert SECRET not in cassette
        assert "Remember [redacted]." in cassette
        kernel.execute("%pi replay secret.jsonl")
        replayed = kernel.execute("%%pi --interpolate\nRemember {tok}.")
        assert replayed.status == "ok", replayed.error_text
        assert "Noted." in replayed.text("text/markdown")


def test_a_deleted_notebook_directory_is_one_clear_line(pi_env: PiEnv, llm: ScriptedLLM):
    folder = pi_env.cwd / "project"
    folder.mkdir()
    with running_kernel(env=pi_env.env, cwd=folder) as kernel:
        kernel.execute("%load_ext pi_magics")
        folder.rmdir()
        for line in ("%pi export turns.md", "%pi record turns.jsonl", "%pi replay t.jsonl"):
            assert "directory no longer exists" in short_failure(kernel.execute(line), lines=1)


def test_a_binary_cassette_is_one_clear_line(kernel: KernelHarness, pi_env: PiEnv):
    (pi_env.cwd / "binary.jsonl").write_bytes(bytes(range(256)))
    assert "is not a cassette (it is not text)" in short_failure(
        kernel.execute("%pi replay binary.jsonl"), lines=1
    )


def test_a_cassette_whose_directory_went_away_is_written_again_whole(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    llm.enqueue(script.text("One."), script.text("Two."))
    folder = pi_env.cwd / "gone"
    kernel.execute("%pi record gone/run.jsonl")
    assert kernel.execute("%%pi\nFirst.").status == "ok"
    for leftover in folder.iterdir():
        leftover.unlink()
    folder.rmdir()
    assert kernel.execute("%%pi\nSecond.").status == "ok"
    entries = read_cassette(folder / "run.jsonl")
    assert [entry.request.prompt for entry in entries] == ["First.", "Second."]


def test_an_exported_answer_with_active_content_renders_inert(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    payloads = "\n\n".join(PAYLOADS)
    llm.enqueue(*script.tool_then_answer(command="echo '<svg onload=alert(1)>'", answer=payloads))
    assert kernel.execute("%%pi\nShow me some HTML.").status == "ok"
    assert kernel.execute("%pi export answer.md").status == "ok"
    markdown = (pi_env.cwd / "answer.md").read_text()
    assert "onerror=alert(1)" in markdown.replace("&lt;", "<")  # the text is all there...
    assert active_content([{"text/markdown": markdown}]) == []  # ...and runs nothing
