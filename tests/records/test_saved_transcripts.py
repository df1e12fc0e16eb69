"""Transcripts in real notebooks: executed by nbclient against the real Pi, saved, read back,
exported, converted to HTML; and never holding a credential."""

from __future__ import annotations

import subprocess
import sys

import nbformat

from pi_kernel.rpc import PiInstall
from pi_kernel.transcript import TextPart, ThinkingPart, ToolPart, Transcript, transcripts_in
from tests.support import scripted_llm as script
from tests.support.kernels import run_notebook
from tests.support.pi_env import PiEnv, write_agent_dir
from tests.support.scripted_llm import ScriptedLLM

ENV_SECRET = "tok-env-3c1f9a7e2b55"
MODELS_JSON_SECRET = "sk-models-json-5d8e2a1c77"


def transcripts_of(cell: nbformat.NotebookNode) -> list[Transcript]:
    return transcripts_in(cell.outputs)


def test_every_pi_output_carries_its_transcript_and_no_credential(
    pi_env: PiEnv, llm: ScriptedLLM, pi_install: PiInstall
):
    write_agent_dir(pi_env.agent_dir, llm.base_url, api_key=MODELS_JSON_SECRET)
    pi_env.env["SCRIPTED_SECRET_TOKEN"] = ENV_SECRET
    llm.enqueue(*script.tool_then_answer(command="echo transcript-tool", answer="The tool ran."))
    llm.enqueue(script.thinking("Let me weigh it.", "Thought it through."))
    # A tool that prints a credential: what it printed is shown and saved redacted.
    llm.enqueue(*script.tool_then_answer(command="echo token=$SCRIPTED_SECRET_TOKEN", answer="ok"))
    path = pi_env.cwd / "saved.ipynb"
    saved = run_notebook(
        [
            "%load_ext pi_magics\n%pi record turns.cassette.jsonl",
            "%%pi\nRun echo.",
            "%%pi --model scripted/reasoner --thinking high\nThink first.",
            "%%pi\nPrint the token.",
            "%pi record off",
            "%pi export turns.md",
            "%pi export turns.jsonl",
            "%pi export session.html",
        ],
        env=pi_env.env,
        path=path,
    )
    [tool_turn] = transcripts_of(saved.cells[1])
    [thinking_turn] = transcripts_of(saved.cells[2])
    for transcript in (tool_turn, thinking_turn):
        assert Transcript.model_validate_json(transcript.model_dump_json()) == transcript
        assert transcript.schema_version == 1
        assert transcript.pi_version == pi_install.version
        assert transcript.status == "completed"
        assert transcript.session_id
        assert transcript.session_file
        assert transcript.session_file.endswith(".jsonl")
        assert "/" not in transcript.session_file  # a name, not a path into the home dir
        assert transcript.usage.input > 0
        assert transcript.ended is not None
        assert transcript.ended >= transcript.started
    assert (tool_turn.model_ref, tool_turn.thinking_level) == ("scripted/plain", "off")
    assert tool_turn.prompt == "Run echo."
    [tool] = [part for part in tool_turn.blocks if isinstance(part, ToolPart)]
    assert (tool.name, tool.arguments, tool.state) == (
        "bash",
        {"command": "echo transcript-tool"},
        "ok",
    )
    assert "transcript-tool" in tool.output
    assert tool_turn.text == "The tool ran."
    assert isinstance(tool_turn.blocks[-1], TextPart)
    assert (thinking_turn.model_ref, thinking_turn.thinking_level) == ("scripted/reasoner", "high")
    assert [p.text for p in thinking_turn.blocks if isinstance(p, ThinkingPart)] == [
        "Let me weigh it."
    ]

    markdown = (pi_env.cwd / "turns.md").read_text()
    assert "echo transcript-tool" in markdown
    assert "The tool ran." in markdown
    assert "Thought it through." in markdown
    [printing_turn] = transcripts_of(saved.cells[3])
    [printed] = [part for part in printing_turn.blocks if isinstance(part, ToolPart)]
    assert printed.output.strip() == "token=[redacted]"
    assert "token=[redacted]" in "".join(
        str(output.get("data", {}).get("text/plain", "")) for output in saved.cells[3].outputs
    )
    lines = (pi_env.cwd / "turns.jsonl").read_text().splitlines()
    assert [Transcript.model_validate_json(line) for line in lines] == [
        tool_turn,
        thinking_turn,
        printing_turn,
    ]
    assert "It is Pi's own page: like Pi's session file it is not redacted" in (
        "".join(output.get("text", "") for output in saved.cells[-1].outputs)
    )
    html_export = (pi_env.cwd / "session.html").read_text()
    assert html_export.startswith("<!DOCTYPE html>")  # Pi's own export (its data is encoded)

    cassette = (pi_env.cwd / "turns.cassette.jsonl").read_text()
    assert len(cassette.splitlines()) == 3
    saved_text = path.read_text() + cassette + markdown + "\n".join(lines)
    assert ENV_SECRET not in saved_text
    assert MODELS_JSON_SECRET not in saved_text


def test_nbconvert_html_shows_the_answers_without_a_kernel(pi_env: PiEnv, llm: ScriptedLLM):
    llm.enqueue(*script.tool_then_answer(command="echo converted", answer="**Converted** fine."))
    path = pi_env.cwd / "convert.ipynb"
    run_notebook(["%load_ext pi_magics", "%%pi\nRun it."], env=pi_env.env, path=path)
    converted = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env=pi_env.env,
    )
    assert converted.returncode == 0, converted.stderr
    page = (pi_env.cwd / "convert.html").read_text()
    assert "Converted" in page
    assert "fine." in page
    assert "echo converted" in page
