"""The kernel tools' notebook side without a kernel: refusals, summaries, bounds."""

from __future__ import annotations

import pytest

from pi_kernel.kernel_tools.catalog import HISTORY, PYTHON, KernelToolCall
from pi_magics.desk import Desk
from pi_magics.notebook_tools import NO_CELL, NotebookTools
from pi_magics.workbench import PART_LIMIT, cut, summary_of


@pytest.mark.anyio
async def test_a_call_with_no_cell_running_is_refused_with_the_reason():
    reply = await NotebookTools(Desk()).call(KernelToolCall(PYTHON, "c1", {"code": "1"}))
    assert reply.is_error
    assert NO_CELL in reply.text


@pytest.mark.anyio
async def test_a_tool_the_policy_does_not_offer_is_refused_before_it_reaches_the_cell():
    tools = NotebookTools(Desk(), "read")
    assert list(tools.offered()) == [HISTORY, "notebook_variables"]
    reply = await tools.call(KernelToolCall(PYTHON, "c1", {"code": "1"}))
    assert reply.is_error
    assert "not allowed in this cell (kernel tools: 'read')" in reply.text
    tools.cell_policy = "off"
    assert list(tools.offered()) == []


class Exploding:
    """An object whose every attribute fails: a summary must not fail with it."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError("boom")


def test_summaries_are_short_and_call_nothing_that_can_fail():
    assert summary_of(42) == " = 42"
    assert summary_of("Ada") == " = 'Ada'"
    assert summary_of([1, 2, 3]) == ", length 3"
    long_text = summary_of("x" * 10_000)
    assert long_text.startswith(", length 10000: 'xxx")
    assert len(long_text) < 200
    assert summary_of(Exploding()) == ""


def test_long_parts_keep_their_start_and_end_and_count_the_cut():
    text = "start " + "x" * (3 * PART_LIMIT) + " end"
    shown = cut(text)
    assert shown.startswith("start ")
    assert shown.endswith(" end")
    assert f"{len(text) - PART_LIMIT:,} characters cut" in shown
    assert len(shown) < PART_LIMIT + 100
