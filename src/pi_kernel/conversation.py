"""The conversation follows the notebook: each cell's place in Pi's session tree.

Pi's session is a tree: every entry has a parent, and the next prompt attaches at the leaf.
The rule: a cell run for the first time is asked at the leaf, as in any conversation; a cell
run again is asked where it was first asked, that is after the *latest* answer of the cell
it followed then (or at the same fixed point when it followed no cell: the start, or a turn
pi-kernel did not ask).  So "Run All" rebuilds the conversation in the notebook's order, and
re-running an edited cell asks it without the answers that came after it; the earlier
answers stay in the session file as branches.

Pi reads its tree over RPC (``get_entries``) but moves it only from an extension: pi-kernel's
own (``extension.js``) has a command for it, run between turns, and for labelling each
cell's prompt ``pi-kernel cell <id>``.  The label entry becomes the leaf after the answer,
and the labels let a kernel that resumes the session rebuild the map.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .errors import PiError
from .kernel_tools.catalog import BRANCH_COMMAND
from .rpc.client import PiClient
from .rpc.errors import PiCommandError
from .rpc.protocol import ExtensionError, SessionEntries, SessionEntry, UserMessage

logger = logging.getLogger(__name__)

LABEL_PREFIX = "pi-kernel cell "
"""The label of a cell's prompt: the prefix, then the cell's id."""
PASSED_THROUGH = frozenset({"model_change", "thinking_level_change", "label", "compaction"})
"""Entries that are no turn of their own: a cell is still "after" the cell above them."""


@dataclass
class CellPlace:
    """A cell's place in the tree."""

    after: str | None
    """The cell whose answer it followed when first run; None: a fixed point (the start)."""
    prompt: str
    """The entry of its first prompt: its parent is that fixed point."""
    leaf: str
    """The leaf after its latest answer (the label entry of its latest prompt)."""


@dataclass(frozen=True)
class TreeRow:
    """One prompt of the session's tree, for ``%pi tree``."""

    depth: int
    """How many prompts come before it on its branch."""
    cell: str | None
    """The cell that asked it (None: a turn pi-kernel did not label)."""
    text: str
    current: bool
    """On the conversation as it stands."""


@dataclass(frozen=True)
class Placement:
    """Where a turn is asked."""

    cell: str
    again: bool
    """A cell run before, asked again where it was first asked."""
    after: str | None
    """The cell whose latest answer it follows; None: none (the start, or a fixed point)."""
    parent: str | None
    """The entry the prompt attaches to (None: the root)."""


@dataclass(frozen=True, slots=True)
class _Node:
    """What pi-kernel keeps of one entry: its place, and whether it is a prompt or one of
    pi-kernel's labels (never the messages themselves: Pi keeps those)."""

    id: str
    parent: str | None
    type: str
    prompt: str | None = None
    """A prompt's first line."""
    cell: str | None = None
    """The cell a pi-kernel label names."""
    target: str | None = None
    """The entry that label names."""


def _node(entry: SessionEntry) -> _Node:
    if entry.is_prompt:
        return _Node(entry.id, entry.parent_id, entry.type, prompt=_first_line(entry))
    if entry.type == "label" and entry.label and entry.label.startswith(LABEL_PREFIX):
        cell = entry.label.removeprefix(LABEL_PREFIX)
        return _Node(entry.id, entry.parent_id, entry.type, cell=cell, target=entry.target_id)
    return _Node(entry.id, entry.parent_id, entry.type)


class _Tree:
    """What pi-kernel knows of the session's entries: parents, prompts, pi-kernel's labels,
    and the leaf."""

    def __init__(self) -> None:
        self.nodes: dict[str, _Node] = {}
        """In the order Pi appended them."""
        self.cursor: str | None = None
        """The newest entry read (``get_entries``'s ``since``)."""
        self.leaf: str | None = None

    def add(self, read: SessionEntries) -> list[_Node]:
        added = [_node(entry) for entry in read.entries]
        for node in added:
            self.nodes[node.id] = node
        if added:
            self.cursor = added[-1].id
        self.leaf = read.leaf_id
        return added

    def parent(self, entry_id: str) -> str | None:
        return self.nodes[entry_id].parent

    def up(self, entry_id: str | None) -> Iterator[_Node]:
        """``entry_id`` and the entries above it, up to the root (or the first not read)."""
        while entry_id is not None and entry_id in self.nodes:
            node = self.nodes[entry_id]
            yield node
            entry_id = node.parent

    def owner(self, entry_id: str | None) -> str | None:
        """The cell whose answer ``entry_id`` ends (walking up past entries that are no
        turn); None when a turn pi-kernel did not label, or the root, comes first."""
        for node in self.up(entry_id):
            if node.cell is not None:
                return node.cell
            if node.type not in PASSED_THROUGH:
                return None
        return None

    def prompt_above(self, entry_id: str | None) -> str | None:
        """The nearest prompt at or above ``entry_id``."""
        return next((node.id for node in self.up(entry_id) if node.prompt is not None), None)


class NotebookConversation:
    """The cells of one notebook in one Pi session (the map resets with the session)."""

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.cells: dict[str, CellPlace] = {}
        self._tree = _Tree()
        self._checked: tuple[int, str | None] | None = None
        """The Pi process last checked, and why the rule cannot apply in it (None: it can)."""

    async def unavailable(self, client: PiClient) -> str | None:
        """Why the conversation cannot follow the notebook with this Pi (None: it can),
        checked once per Pi process."""
        if self._checked is None or self._checked[0] != client.pid:
            self._checked = (client.pid, await _unavailable(client))
        return self._checked[1]

    async def place(self, client: PiClient, session_id: str | None, cell: str) -> Placement:
        """Put the leaf where ``cell`` is to be asked; raises ``PiError`` when Pi could not
        move it (nothing is sent then)."""
        await self.refresh(client, session_id)
        tree = self._tree
        known = self.cells.get(cell)
        if known is None:
            return Placement(cell, False, tree.owner(tree.leaf), tree.leaf)
        after = known.after if known.after in self.cells else None
        if after is not None:
            target = self.cells[after].leaf
            expected: str | None = target
        else:  # a user message as the target puts the leaf on its parent
            target, expected = known.prompt, tree.parent(known.prompt)
        if tree.leaf != expected:
            await self._command(client, f"goto {target}")
            await self._read(client)
            if tree.leaf != expected:
                raise PiError(
                    f"Pi did not move the conversation back to where this cell was first "
                    f"asked (entry {expected or 'the start'}; it is at {tree.leaf}): nothing "
                    "was sent.",
                    hint="%config PiMagics.conversation = 'linear' asks every cell at the end.",
                )
        return Placement(cell, True, after, expected)

    async def settle(self, client: PiClient, placement: Placement) -> str | None:
        """After the turn: label its prompt and keep the cell's new leaf.  Returns the
        prompt's entry (None: the turn left none, as a command Pi handled itself)."""
        fresh = await self._read(client)
        prompt = next((node.id for node in fresh if node.prompt is not None), None)
        if prompt is None:
            return None
        await self._command(client, f"label {prompt} {LABEL_PREFIX}{placement.cell}")
        await self._read(client)
        leaf = self._tree.leaf
        if leaf is None or self._tree.nodes[leaf].cell != placement.cell:
            raise PiError(f"Pi did not label this cell's prompt (entry {prompt}).")
        known = self.cells.get(placement.cell)
        if known is not None and placement.again:
            known.leaf = leaf
        else:
            self.cells[placement.cell] = CellPlace(placement.after, prompt, leaf)
        return prompt

    def rows(self) -> list[TreeRow]:
        """Every prompt in the session, as a tree (children in the order asked)."""
        tree = self._tree
        cells = {node.target: node.cell for node in tree.nodes.values() if node.cell}
        children: dict[str | None, list[_Node]] = {}
        for node in tree.nodes.values():
            if node.prompt is not None:
                children.setdefault(tree.prompt_above(node.parent), []).append(node)
        current = self.branch_prompts()
        rows: list[TreeRow] = []

        def visit(parent: str | None, depth: int) -> None:
            for node in children.get(parent, []):
                text = node.prompt or ""
                rows.append(TreeRow(depth, cells.get(node.id), text, node.id in current))
                visit(node.id, depth + 1)

        visit(None, 0)
        return rows

    def standing(self) -> str | None:
        """The cell whose answer the conversation ends with now (as last read)."""
        return self._tree.owner(self._tree.leaf)

    def branch_prompts(self) -> set[str]:
        """The prompts on the conversation as it stands (root to leaf)."""
        return {node.id for node in self._tree.up(self._tree.leaf) if node.prompt is not None}

    async def refresh(self, client: PiClient, session_id: str | None) -> None:
        """Read what is new in the session; a session other than the last one (a new
        one, a resumed one) is read whole and its cells found by their labels."""
        if session_id != self.session_id:
            self.session_id = session_id
            await self._read_whole(client)
            return
        try:
            await self._read(client)
        except PiCommandError:  # the newest entry read is gone: another session after all
            await self._read_whole(client)

    async def _read_whole(self, client: PiClient) -> None:
        """Forget what was read, read the whole session, and find its cells by their labels."""
        self.cells, self._tree = {}, _Tree()
        self._rebuild(self._tree.add(await client.get_entries()))

    async def _read(self, client: PiClient) -> list[_Node]:
        return self._tree.add(await client.get_entries(self._tree.cursor))

    def _rebuild(self, nodes: Iterable[_Node]) -> None:
        for node in nodes:
            if node.cell is None or node.target not in self._tree.nodes:
                continue
            known = self.cells.get(node.cell)
            if known is None:
                after = self._tree.owner(self._tree.parent(node.target))
                self.cells[node.cell] = CellPlace(after, node.target, node.id)
            else:
                known.leaf = node.id

    async def _command(self, client: PiClient, args: str) -> None:
        """Run pi-kernel's extension command; its handler's failure is raised."""
        failures: list[str] = []
        async with client.prompt(f"/{BRANCH_COMMAND} {args}") as run:
            async for event in run:
                if isinstance(event, ExtensionError):
                    failures.append(event.error or "failed")
        outcome = run.outcome
        if failures or outcome is None or not outcome.handled_without_run:
            reason = "; ".join(failures) or "Pi did not take it as pi-kernel's command"
            raise PiError(f"Pi could not {args.split()[0]} in its session tree: {reason}.")


def _first_line(entry: SessionEntry, limit: int = 70) -> str:
    text = UserMessage.model_validate(entry.message or {}).text
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def tree_unreadable(client: PiClient) -> str | None:
    """Why this Pi cannot show the kernel its session tree (None: it can)."""
    if client.reads_entries:
        return None
    return (
        f"Pi {client.install.version} cannot show its session tree to the kernel "
        "(get_entries came with Pi 0.80.3)"
    )


async def _unavailable(client: PiClient) -> str | None:
    if (reason := tree_unreadable(client)) is not None:
        return reason
    # Without pi-kernel's extension the command would go to the model as a prompt.
    if not any(command.name == BRANCH_COMMAND for command in await client.get_commands()):
        return "pi-kernel's extension is not loaded in this Pi (it comes with the kernel tools)"
    return None
