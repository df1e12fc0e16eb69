"""What the notebook lends Pi's session (the engine's ``ToolHandler``): the kernel tools the
running cell offers, the calls the user approves first, the cell's budget, and the way to the
running cell.

Each call, and each question about one, goes to the running cell as an errand on the
``Desk``; the cell does it on the kernel's main thread (``Workbench.run``, ``approvals``).
With no cell running it is refused at once, and Pi hears why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pi_kernel.kernel_tools.catalog import (
    EVERY_TOOL,
    OFFERED,
    KernelToolCall,
    Policy,
    ToolReply,
    Verdict,
)
from pi_kernel.rpc.usage import UsageTally

from .approvals import Approval, not_approved
from .desk import Declined, Desk, Errand

NO_CELL = "no notebook cell is running: Pi's kernel tools work only while a %%pi cell runs"


class KernelCall(Errand[ToolReply]):
    """A kernel tool call waiting for the running cell."""

    def __init__(self, call: KernelToolCall) -> None:
        super().__init__()
        self.call = call


class NotebookTools:
    """The kernel tools as the session sees them: the policy, the calls the user approves
    first, the running cell's budget, and the way to the cell."""

    def __init__(self, desk: Desk, policy: Policy = "all") -> None:
        self.desk = desk
        self.policy: Policy = policy
        """The notebook's setting (``PiMagics.kernel_tools``)."""
        self.cell_policy: Policy | None = None
        """The running cell's own choice (``%%pi --tools``), while it runs."""
        self.ask_before: tuple[str, ...] = ()
        """The notebook's setting (``PiMagics.ask_before``): tools whose calls wait for the
        user's yes."""
        self.cell_ask: tuple[str, ...] = ()
        """The running cell's additions (``%%pi --ask``), while it runs."""
        self.always: set[str] = set()
        """Tools the user answered "always" for: not asked about again in this kernel."""
        self.limit: Callable[[UsageTally], str | None] | None = None
        """The running cell's budget (None: it has none): why its run must stop, having
        spent so much, or None."""
        self.stopped: str | None = None
        """Why the running cell's run was told to stop, once it was."""

    def budgeted(self) -> bool:
        return self.limit is not None

    def budget_stop(self, run_usage: UsageTally) -> str | None:
        why = self.limit(run_usage) if self.limit is not None else None
        if why is not None:
            self.stopped = why
        return why

    def asked(self) -> Sequence[str]:
        return tuple(dict.fromkeys((*self.ask_before, *self.cell_ask)))

    def needs_approval(self, tool: str) -> bool:
        asked = self.asked()
        return (tool in asked or EVERY_TOOL in asked) and tool not in self.always

    async def approve(self, call: KernelToolCall) -> Verdict:
        if not self.needs_approval(call.tool):
            return Verdict(True)
        try:
            verdict = await self.desk.bring(Approval(call), no_cell="no cell was running to ask in")
        except Declined as exc:
            return not_approved(call.tool, str(exc))
        if verdict.always:
            self.always.add(call.tool)
        return verdict

    @property
    def effective(self) -> Policy:
        return self.cell_policy or self.policy

    def offered(self) -> Sequence[str]:
        return OFFERED[self.effective]

    async def call(self, call: KernelToolCall) -> ToolReply:
        policy = self.effective
        if call.tool not in OFFERED[policy]:
            return ToolReply(
                f"{call.tool} is not allowed in this cell (kernel tools: {policy!r}).",
                is_error=True,
            )
        try:
            return await self.desk.bring(KernelCall(call), no_cell=NO_CELL)
        except Declined as exc:
            return ToolReply(f"The notebook did not run {call.tool}: {exc}.", is_error=True)
