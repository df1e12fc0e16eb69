"""The kernel tools' notebook side without a kernel: refusals, summaries, bounds."""

from __future__ import annotations

import pytest

from pi_kernel.kernel_tools.catalog import HISTORY, PYTHON, KernelToolCall
from pi_magics.desk import Desk
from pi_magics.namespace import summary_of, variables
from pi_magics.notebook_tools import NO_CELL, NotebookTools
from pi_magics.workbench import PART_LIMIT, cut


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


def test_summaries_are_short_and_say_what_failed():
    assert summary_of(42) == " = 42"
    assert summary_of("Ada") == " = 'Ada'"
    assert summary_of([1, 2, 3]) == ", length 3"
    long_text = summary_of("x" * 10_000)
    assert long_text.startswith(", length 10000: 'xxx")
    assert len(long_text) < 200
    assert summary_of(Exploding()) == ""  # asked nothing: shape and dtype are not on its type


class NoClass:
    """Django's unconfigured ``settings``: even ``__class__`` raises."""

    @property
    def __class__(self) -> type:  # type: ignore[override]
        raise ValueError("not configured")


class BadLength(list[int]):
    def __len__(self) -> int:
        raise ValueError("no length")


class BadRepr(int):
    def __repr__(self) -> str:
        raise ValueError("no repr")


class BadShape:
    dtype = "float64"

    @property
    def shape(self) -> tuple[int, ...]:
        raise ValueError("no shape")


def test_every_entry_is_listed_whatever_it_raises():
    namespace = {
        "settings": NoClass(),
        "rows": BadLength(),
        "count": BadRepr(3),
        "grid": BadShape(),
        1: 2,
        "fine": 5,
    }
    assert variables(namespace).splitlines() == [
        "count: tests.magics.test_workbench.BadRepr, its __repr__ raised ValueError",
        "fine: int = 5",
        "grid: tests.magics.test_workbench.BadShape, its shape raised ValueError",
        "rows: tests.magics.test_workbench.BadLength, its __len__ raised ValueError",
        "settings: tests.magics.test_workbench.NoClass",
        "1 (a key of type int, not a name): int = 2",
    ]


def test_a_credential_like_names_value_is_hidden_and_its_length_said():
    namespace = {"API_KEY": "sk-" + "x" * 48, "db_password": b"hunter2", "token": None}
    listed = variables(namespace, credential=lambda name: True)
    assert listed.splitlines() == [
        "API_KEY: str, 51 characters, hidden (credential-like name)",
        "db_password: bytes, 7 bytes, hidden (credential-like name)",
        "token: NoneType, hidden (credential-like name)",
    ]


def test_long_parts_keep_their_start_and_end_and_count_the_cut():
    text = "start " + "x" * (3 * PART_LIMIT) + " end"
    shown = cut(text)
    assert shown.startswith("start ")
    assert shown.endswith(" end")
    assert f"{len(text) - PART_LIMIT:,} characters cut" in shown
    assert len(shown) < PART_LIMIT + 100
