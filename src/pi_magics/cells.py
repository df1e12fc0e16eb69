"""Which notebook cell asks: the key the conversation knows a cell by, and what the page
calls it (``In [n]``).

The frontend names each cell (``cellId`` in the execute request's metadata, which IPython
passes on as ``info.cell_id`` to ``pre_run_cell``).  A cell that asks Pi more than once in
one run (``run_cell_magic`` in a loop) gets one key per ask, in order, so running it again
asks each of them again in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from pi_kernel.conversation import NotebookConversation, TreeRow
from pi_kernel.turn import TurnPlace, TurnResult

NO_CELL_ID = "this frontend does not say which cell runs (no cell id)"


@dataclass
class _Running:
    cell_id: str | None
    count: int | None
    asks: int = 0


class CellsSeen:
    """The cell running now, and the execution count each key was last asked under."""

    def __init__(self) -> None:
        self._running = _Running(None, None)
        self._counts: dict[str, int | None] = {}
        self._said: set[str] = set()
        """Why the conversation stayed linear, each said once."""
        self.linear: str | None = None
        """Why the last turn's conversation could not follow the cells (None: it did)."""

    def starting(self, cell_id: str | None, count: int | None) -> None:
        """A cell of the user's starts (IPython's ``pre_run_cell``)."""
        self._running = _Running(cell_id, count)

    def next_key(self) -> str | None:
        """The key of the ask about to be made in the running cell; None when the frontend
        did not say which cell runs."""
        running = self._running
        if running.cell_id is None:
            return None
        running.asks += 1
        key = running.cell_id if running.asks == 1 else f"{running.cell_id}#{running.asks}"
        self._counts[key] = running.count
        return key

    def place(self, key: str | None, result: TurnResult) -> TurnPlace | None:
        """Where the turn sat, as its transcript records it (None: nothing known)."""
        placement = result.placement
        if placement is None:
            return TurnPlace(cell_id=self._cell_id(key)) if key else None
        after = self._counts.get(placement.after) if placement.after else None
        return TurnPlace(
            cell_id=self._cell_id(key),
            entry_id=result.prompt_entry,
            parent_id=placement.parent,
            asked_again=placement.again,
            after_count=after,
        )

    def linear_once(self, reason: str) -> str | None:
        """The notice that the conversation stays linear, the first time for ``reason``."""
        if reason in self._said:
            return None
        self._said.add(reason)
        return (
            f"The conversation stays linear (each cell asked at its end): {reason}. "
            "Re-running a cell asks it again after everything since."
        )

    def standing(self, conversation: NotebookConversation) -> str:
        """Where the conversation stands, for ``%pi status``."""
        known = len(conversation.cells)
        text = f"the conversation follows them ({known} in this session)"
        owner = conversation.standing()
        if owner is None:
            return text
        count = self._counts.get(owner)
        return text + (f"; a new cell follows In [{count}]" if count else "")

    def tree_text(self, session_id: str | None, rows: list[TreeRow]) -> str:
        """``%pi tree``: each prompt under the one it followed, named by its cell."""
        if not rows:
            return "Pi's session holds no prompt yet."
        lines = [
            f"Pi session {session_id or '(in memory)'}: each prompt under the one it "
            "followed; * the conversation as it stands"
        ]
        for row in rows:
            mark = "*" if row.current else " "
            lines.append(f"{mark} {'  ' * row.depth}{self._name(row.cell)}  {row.text}")
        return "\n".join(lines)

    def _name(self, cell: str | None) -> str:
        if cell is None:
            return "(no cell)"
        count = self._counts.get(cell)
        return f"In [{count}]" if count is not None else f"cell {cell[:8]}"

    def _cell_id(self, key: str | None) -> str | None:
        return key.split("#", 1)[0] if key else None
