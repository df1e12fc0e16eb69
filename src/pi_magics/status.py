"""``%pi status``: what this notebook's Pi is, runs with, and last did, as aligned lines."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pi_kernel.kernel_tools.catalog import Policy
from pi_kernel.kernel_tools.channel import ChannelStats
from pi_kernel.rpc.errors import PiExited
from pi_kernel.rpc.protocol import CACHE_WARM, ContextUsage
from pi_kernel.session import STATUS_ANSWER_TIMEOUT, SessionStatus
from pi_kernel.turn import Turn, tokens_text

from .render import warming_text

STDERR_LINES_SHOWN = 10
"""Lines of a dead Pi's stderr that ``%pi status`` shows."""


def context_text(context: ContextUsage) -> str:
    """``12,345 of 128,000 tokens (9.6%)``: how full the model's context window is."""
    if context.tokens is None:  # just compacted: Pi knows again after the next answer
        return f"unknown until the next answer (of {context.context_window:,} tokens)"
    percent = f" ({context.percent:.1f}%)" if context.percent is not None else ""
    return f"{context.tokens:,} of {context.context_window:,} tokens{percent}"


def tools_text(policy: Policy, offered: Sequence[str], served: ChannelStats | None) -> str:
    """The kernel tools line: the policy, what it offers, and what this Pi's channel did."""
    if not offered:
        return f"{policy} (Pi works only with its own tools)"
    text = f"{policy}: {', '.join(offered)}"
    if served is not None:
        text += f"; offered in {_count(served.offers, 'run')}, {_count(served.calls, 'call')}"
        text += f", {served.approvals} checked for approval" if served.approvals else ""
        text += f", {served.refused} refused" if served.refused else ""
    return text


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def format_status(
    status: SessionStatus,
    last_turn: Turn | None,
    last_exit: PiExited | None = None,
    cassette: str | None = None,
    tools: tuple[Policy, Sequence[str]] | None = None,
    guards: Sequence[tuple[str, str]] = (),
) -> str:
    """``%pi status`` as aligned lines; a Pi that died shows the end of its stderr.
    ``tools``: the kernel tools' policy and the tools it offers (None: no kernel);
    ``guards``: what the notebook holds Pi to (the budget, the tools asked about first), as
    (label, text) lines."""
    lines = []
    if status.install is not None:
        lines.append(f"Pi:        {status.install.describe()}")
    if status.running and status.pid is not None and not status.answering:
        lines.append(
            f"Process:   running, pid {status.pid}, and not answering (nothing in "
            f"{STATUS_ANSWER_TIMEOUT:g} s): %pi restart starts a new one"
        )
    elif status.running and status.pid is not None:
        lines.append(f"Process:   running, pid {status.pid}")
    elif status.asleep_since is not None:
        since = time.strftime("%H:%M:%S", time.localtime(status.asleep_since))
        lines.append(
            f"Process:   asleep since {since} (no turn for PiMagics.idle_stop): the next %%pi "
            "cell starts it again on the same session"
        )
    else:
        lines.append("Process:   not running (the next %%pi cell starts it)")
    if status.last_error:
        lines.append(f"Error:     {status.last_error}")
    state = status.state
    if state is not None:
        where = state.session_file or "in memory (nothing saved)"
        lines.append(f"Session:   {state.session_id or '?'} · {where}")
        lines.append(f"Model:     {state.model_ref or 'none'}")
        lines.append(f"Thinking:  {state.thinking_level}")
    stats = status.stats
    if stats is not None:
        tokens = stats.tokens
        lines.append(
            f"Totals:    {tokens_text(tokens.input, tokens.output)}, "
            f"{tokens.cache_read:,} cache read / {tokens.cache_write:,} cache write, "
            f"${stats.cost:.4f} (the whole conversation, as Pi counts it)"
        )
        if stats.context_usage is not None and stats.context_usage.context_window:
            lines.append(f"Context:   {context_text(stats.context_usage)}")
    warming = status.side_usage.get(CACHE_WARM)
    if warming is not None and warming.count:
        lines.append(f"Warming:   {warming_text(warming)} since this Pi started")
    if tools is not None:
        lines.append(f"Tools:     {tools_text(*tools, status.tools)}")
    lines.extend(f"{label + ':':11}{text}" for label, text in guards)
    lines.append(f"Cwd:       {status.cwd}")
    if last_turn is not None:
        usage = last_turn.usage
        lines.append(
            f"Last turn: {last_turn.status}, {tokens_text(usage.input, usage.output)}, "
            f"${usage.cost:.4f}, {last_turn.duration:.1f} s"
        )
    if cassette is not None:
        lines.append(f"Cassette:  {cassette}")
    if last_exit is not None:
        lines.append(f"Last exit: {last_exit.message}")
        tail = last_exit.stderr_tail[-STDERR_LINES_SHOWN:]
        lines.extend(f"  stderr | {line}" for line in tail or ["(nothing on stderr)"])
    return "\n".join(lines)
