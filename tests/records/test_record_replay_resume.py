"""Record a notebook's Pi turns, replay them with the LLM gone; resume a session after a
kernel restart.  Real kernels, the real Pi."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pi_kernel.transcript import MIMETYPE, Transcript
from tests.support import scripted_llm as script
from tests.support.kernels import CellRun, KernelHarness, running_kernel, short_failure
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM

PROMPTS = ["%%pi\nSay hello.", "%%pi\nRun echo.", "%%pi --model scripted/reasoner\nThink."]


def shown(run: CellRun) -> tuple[list[dict[str, Any]], Transcript]:
    """What the cell shows, apart from its footer (times, replay mark); and its transcript."""
    *blocks, footer = run.outputs
    transcript = Transcript.model_validate(footer["data"][MIMETYPE])
    return blocks, transcript


def without_times(transcript: Transcript) -> dict[str, Any]:
    return transcript.model_dump(exclude={"started", "ended", "replayed_from"})


def test_a_recorded_run_replays_identically_without_the_llm(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    llm.enqueue(script.text("Hello there."))
    llm.enqueue(*script.tool_then_answer(command="echo recorded", answer="It printed recorded."))
    llm.enqueue(script.thinking("Hmm.", "Done thinking."))
    assert "Recording" in kernel.execute("%pi record cassettes/run.jsonl").text()
    live = [kernel.execute(cell) for cell in PROMPTS]
    assert all(run.status == "ok" for run in live), [run.error_text for run in live]
    assert "3 turns" in kernel.execute("%pi record off").text()
    assert len((pi_env.cwd / "cassettes" / "run.jsonl").read_text().splitlines()) == 3

    llm.close()  # the LLM is gone: a live call could only fail
    requests_before = len(llm.requests)
    replaying = kernel.execute("%pi replay cassettes/run.jsonl")
    assert "Replaying 3 recorded turns" in replaying.text()
    replayed = [kernel.execute(cell) for cell in PROMPTS]
    assert all(run.status == "ok" for run in replayed), [run.error_text for run in replayed]
    assert len(llm.requests) == requests_before
    for live_run, replay_run in zip(live, replayed, strict=True):
        live_blocks, live_transcript = shown(live_run)
        replay_blocks, replay_transcript = shown(replay_run)
        assert replay_blocks == live_blocks
        assert without_times(replay_transcript) == without_times(live_transcript)
        assert replay_transcript.replayed_from == "run.jsonl"
        assert "replayed from run.jsonl" in replay_run.outputs[-1]["data"]["text/plain"]
    assert "It printed recorded." in replayed[1].text("text/markdown")

    past_the_end = kernel.execute("%%pi\nOne more?")
    assert past_the_end.status == "error"
    assert "holds 3 turns and this cell asks for one more" in past_the_end.error_text


def test_a_changed_prompt_is_a_clear_mismatch(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(script.text("Hello there."))
    kernel.execute("%pi record run.jsonl")
    kernel.execute("%%pi\nSay hello.")
    kernel.execute("%pi record off")
    kernel.execute("%pi replay run.jsonl")
    changed = kernel.execute("%%pi\nSay goodbye.")
    assert changed.status == "error"
    assert changed.error_text.strip() == (
        "UsageError: Replay mismatch at turn 1 of run.jsonl: this cell asks 'Say goodbye.' of "
        "scripted/plain (thinking off), the cassette recorded 'Say hello.' of scripted/plain "
        "(thinking off). Record again with %pi record PATH, or stop replaying with "
        "%pi replay off."
    )
    assert len(llm.requests) == 1
    other_model = kernel.execute("%%pi --model scripted/deep\nSay hello.")
    assert "of scripted/deep (thinking off), the cassette recorded" in other_model.error_text


def test_live_on_miss_asks_pi_past_the_end(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(script.text("Recorded."), script.text("Live again."))
    kernel.execute("%pi record run.jsonl")
    kernel.execute("%%pi\nFirst.")
    kernel.execute("%pi record off")
    kernel.execute("%pi replay run.jsonl --live-on-miss")
    assert "Recorded." in kernel.execute("%%pi\nFirst.").text("text/markdown")
    assert "Live again." in kernel.execute("%%pi\nSecond.").text("text/markdown")
    assert len(llm.requests) == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%pi replay missing.jsonl", "No cassette at"),
        ("%pi replay", "Usage: %pi replay PATH [--live-on-miss] | off"),
        ("%pi record off", "Not recording."),
        ("%pi export notes.txt", "writes .md, .jsonl or .html files, not 'notes.txt'"),
        ("%pi export turns.md", "Nothing to export yet"),
        ("%pi resume a b", "Usage: %pi resume [SESSION]"),
        ("%pi status now", "%pi status takes no arguments"),
    ],
)
def test_bad_subcommand_input_is_one_clear_line(
    shared_kernel: KernelHarness, line: str, message: str
):
    run = shared_kernel.execute(line)  # each is refused before it changes anything
    assert run.status == "error"
    assert message in run.error_text
    assert len(run.error_text.strip().splitlines()) == 1


def test_a_bad_cassette_line_names_the_line(kernel: KernelHarness, pi_env: PiEnv):
    (pi_env.cwd / "bad.jsonl").write_text('{"request": {}}\n')
    run = kernel.execute("%pi replay bad.jsonl")
    assert "bad.jsonl, line 1 is not a cassette entry (request.position: Field required)" in (
        run.error_text
    )


def test_resume_continues_the_conversation_after_a_restart(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    llm.enqueue(script.text("Noted: kiwi."), script.text("The word was kiwi."))
    first = kernel.execute("%%pi\nRemember the word kiwi.")
    _, transcript = shown(first)
    kernel.restart()
    assert kernel.execute("%load_ext pi_magics").status == "ok"
    resumed = kernel.execute("%pi resume")
    assert resumed.status == "ok", resumed.error_text
    assert f"Resumed Pi session {transcript.session_id}" in resumed.text()
    answer = kernel.execute("%%pi\nWhich word?")
    assert "The word was kiwi." in answer.text("text/markdown")
    sent = str(llm.requests[-1]["messages"])
    assert "Remember the word kiwi." in sent
    assert "Noted: kiwi." in sent


def test_resume_never_takes_a_session_another_live_notebook_is_writing(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    llm.enqueue(script.text("Mine."), script.text("Theirs."), script.text("Theirs again."))
    _, mine = shown(kernel.execute("%%pi\nThis notebook's first turn."))
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as other:
        other.execute("%load_ext pi_magics")
        _, theirs = shown(other.execute("%%pi\nThe other notebook's turn."))
        other.execute("%%pi\nAnd its newest.")  # its session is now the newest file
        kernel.restart()
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        resumed = kernel.execute("%pi resume")
        assert f"Resumed Pi session {mine.session_id}" in resumed.text(), resumed.error_text
        assert theirs.session_id is not None
        refused = short_failure(kernel.execute(f"%pi resume {theirs.session_id}"), lines=3)
        assert "Another notebook's Pi is using the session" in refused


def test_resuming_a_session_whose_model_is_gone_says_what_pi_said(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    llm.enqueue(script.text("Deep thoughts."))
    assert kernel.execute("%config PiMagics.pi_args = ['--model', 'scripted/deep']").status == "ok"
    deep = kernel.execute("%%pi\nThink deeply.")
    assert deep.status == "ok", deep.error_text
    # The model the session used is taken away; a new Pi resumes that session.
    models_path = pi_env.agent_dir / "models.json"
    models = json.loads(models_path.read_text(encoding="utf-8"))
    provider = models["providers"]["scripted"]
    provider["models"] = [model for model in provider["models"] if model["id"] != "deep"]
    models_path.write_text(json.dumps(models), encoding="utf-8")
    kernel.restart()
    assert kernel.execute("%load_ext pi_magics").status == "ok"
    resumed = kernel.execute("%pi resume")
    assert resumed.status == "ok", resumed.error_text
    # Pi >= 1 says so on its stderr only: the cell that resumed shows it.
    stderr = "".join(out["text"] for out in resumed.outputs if out.get("name") == "stderr")
    assert "Pi: Warning: Could not restore model scripted/deep. Using scripted/plain" in stderr


def test_resuming_a_deleted_session_is_an_error_and_creates_nothing(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    llm.enqueue(script.text("Noted."))
    _, transcript = shown(kernel.execute("%%pi\nRemember this."))
    assert transcript.session_file is not None
    [session_file] = (pi_env.agent_dir / "sessions").rglob(transcript.session_file)
    session_file.unlink()
    before = sorted((pi_env.agent_dir / "sessions").rglob("*"))
    by_id = kernel.execute(f"%pi resume {transcript.session_id}")
    assert by_id.status == "error"
    assert f"No session with id {transcript.session_id!r}" in by_id.error_text
    by_path = kernel.execute(f"%pi resume {session_file}")
    assert f"There is no session file {session_file}" in by_path.error_text
    assert sorted((pi_env.agent_dir / "sessions").rglob("*")) == before
    assert not session_file.exists()


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"PI_KERNEL_REPLAY": "gone.jsonl"}, "PI_KERNEL_REPLAY: No cassette at"),
        (
            {"PI_KERNEL_REPLAY": "a.jsonl", "PI_KERNEL_RECORD": "b.jsonl"},
            "Both PI_KERNEL_RECORD and PI_KERNEL_REPLAY are set: set only one.",
        ),
    ],
)
def test_a_cassette_the_environment_names_but_cannot_give_stops_every_pi_cell(
    pi_env: PiEnv, llm: ScriptedLLM, variables: dict[str, str], problem: str
):
    llm.enqueue(script.text("A live answer."))
    with running_kernel(env={**pi_env.env, **variables}, cwd=pi_env.cwd) as kernel:
        loaded = kernel.execute("%load_ext pi_magics")
        assert loaded.status == "ok"
        assert problem in loaded.text()
        for _ in range(2):  # not a one-off: no cell asks Pi live instead
            run = kernel.execute("%%pi\nHello?")
            assert run.status == "error"
            assert problem in run.error_text
            assert len(run.error_text.strip().splitlines()) == 1
        assert f"Cassette:  {problem}" in kernel.execute("%pi status").text()
        # Saying what to do clears it: a %pi replay off, and cells ask Pi again.
        assert "No cassette: %%pi cells ask Pi." in kernel.execute("%pi replay off").text()
        assert "A live answer." in kernel.execute("%%pi\nHello?").text("text/markdown")
    assert len(llm.requests) == 1
