"""The example notebooks run as CI runs them: replayed from their committed cassettes with
nbclient (a real kernel, the real Pi, no model), and showing what was committed."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter

from pi_kernel.transcript import transcripts_in
from pi_magics.workbench import MADE_BY_PI
from tests.support.example_notebooks import (
    EXAMPLES,
    NOTEBOOKS,
    Example,
    comparable,
    copy_examples,
    replay,
)
from tests.support.pi_env import API_KEY

RECORD_AGAIN = "if the change is meant, run scripts/record_notebooks.py and commit the result"


@pytest.mark.live  # a python3 kernel replays each notebook
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_replay_shows_the_committed_outputs_without_the_model(example: Example, tmp_path: Path):
    committed = nbformat.read(NOTEBOOKS / example.notebook, as_version=4)

    replayed, requests = replay(example, copy_examples(tmp_path))

    assert requests == 0
    assert comparable(replayed) == comparable(committed), RECORD_AGAIN
    # Pi's code ran when the notebook was recorded (its outputs are saved, marked); the
    # replay shows what ran without running it again.
    assert made_by_pi(replayed) == []
    if example.name == "data-analysis":
        kinds = {kind for output in made_by_pi(committed) for kind in output.get("data", {})}
        assert {"image/png", "text/html"} <= kinds  # the plot, and the table


def made_by_pi(notebook: nbformat.NotebookNode) -> list[dict[str, object]]:
    return [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if MADE_BY_PI in output.get("metadata", {})
    ]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_committed_notebooks_hold_valid_transcripts_and_no_key(example: Example):
    committed = nbformat.read(NOTEBOOKS / example.notebook, as_version=4)
    nbformat.validate(committed)
    transcripts = [t for cell in committed.cells for t in transcripts_in(cell.get("outputs", []))]
    cassette = (NOTEBOOKS / example.cassette).read_text(encoding="utf-8").splitlines()
    assert len(transcripts) == len(cassette) > 0
    assert all(t.model_ref == "scripted/plain" and t.thinking_level for t in transcripts)
    # The recordings ran with the scripted provider's key in models.json: it is nowhere.
    for path in (NOTEBOOKS / example.notebook, NOTEBOOKS / example.cassette):
        assert API_KEY not in path.read_text(encoding="utf-8")


def test_the_tour_reads_without_a_kernel_as_html():
    tour = nbformat.read(NOTEBOOKS / "tour.ipynb", as_version=4)
    page, _ = HTMLExporter().from_notebook_node(tour)
    assert "sends back what happened" in page  # an answer
    assert "tail -n +2 data/measurements.csv | wc -l" in page  # a tool call
    assert "interrupted" in page
