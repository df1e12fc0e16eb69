"""``Run``'s settle and abort logic on what real Pis wrote, without Node.

Each conversation in ``tests/data/conversations`` was recorded from the client and a real
pinned Pi (see ``tests.support.conversations``).  Replayed, the run must end as it ended live,
and the client must send Pi exactly what it sent then: the idle checks of a Pi without
``agent_settled``, the courtesy ``abort``, nothing more.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.conversations import CONVERSATIONS, SCENARIOS, lines_of, outcome_record, replay

pytestmark = pytest.mark.anyio

RECORDED = sorted(CONVERSATIONS.glob("*/*.jsonl"))


def test_every_scenario_is_recorded_for_each_pi():
    versions = {path.parent.name for path in RECORDED}
    assert versions == {"1.6.0", "0.87.1", "0.73.1"}
    for version in versions:
        assert {path.stem for path in RECORDED if path.parent.name == version} == set(SCENARIOS)


@pytest.mark.parametrize(
    "path", RECORDED, ids=[f"{path.parent.name}-{path.stem}" for path in RECORDED]
)
async def test_a_replayed_run_ends_as_it_did_live_and_asks_pi_the_same(path: Path):
    outcome, pi = await replay(path)
    assert outcome_record(outcome) == pi.header["outcome"]
    assert pi.sent == lines_of(path, "sent")


async def test_a_run_is_not_over_at_its_first_agent_end():
    # The retry conversation has two agent runs: the failed request's, then the answer's.
    for version in ("1.6.0", "0.87.1"):
        path = CONVERSATIONS / version / "retry.jsonl"
        ends = [record for record in lines_of(path, "read") if record["type"] == "agent_end"]
        assert len(ends) == 2, version
        outcome, _ = await replay(path)
        assert outcome.status == "completed"
        assert outcome.final_text == "Recovered after the error."


async def test_a_different_command_from_the_client_is_reported_with_both_commands(
    tmp_path: Path,
):
    recorded = (CONVERSATIONS / "1.6.0" / "text.jsonl").read_text().splitlines()
    changed = [
        json.dumps({"sent": {**json.loads(line)["sent"], "message": "Something else."}})
        if '"prompt"' in line and '"sent"' in line
        else line
        for line in recorded
    ]
    path = tmp_path / "text.jsonl"
    path.write_text("\n".join(changed) + "\n")
    with pytest.raises(AssertionError, match="the recorded client sent"):
        await replay(path)
