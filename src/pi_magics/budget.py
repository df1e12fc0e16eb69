"""What this kernel's Pi may spend, and what it has spent.

The spending is everything Pi reported for this kernel: each live turn's assistant
messages, and what Pi spent between them (its usage entries: idle prompt-cache warming,
and on Pi >= 1 the summaries it asks a model for when it compacts).  A replayed cell costs
nothing.  The limits are in dollars, in tokens (every token counted: input, output, cache
reads and writes; a local model costs $0, so only tokens can limit it), or both.

A turn is refused at or over a limit.  A running turn is checked before each tool call and
each model call (pi-kernel's extension asks the kernel, with what the run's messages cost as
Pi counts it) and aborted once over: a turn overshoots by at most the message that crossed
the line, and no tool of that message runs.  A guard for people and deployments, not a
wall: the kernel's own user can raise the limit, and so can code run in the kernel.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pi_kernel.rpc.usage import Followed, UsageTally

HOW = "%pi budget $1.00 (dollars), %pi budget 500k tokens, or %pi budget off"
"""How to change the limits, as every budget message ends."""

_DOLLARS = re.compile(r"^\$(\d+(?:\.\d*)?|\.\d+)$")
_TOKENS = re.compile(r"^(\d+(?:\.\d+)?)([km]?)$", re.IGNORECASE)
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000}


@dataclass(frozen=True)
class Limits:
    """The limits in force: dollars, tokens; None is no limit."""

    usd: float | None = None
    tokens: int | None = None

    @property
    def any(self) -> bool:
        return self.usd is not None or self.tokens is not None


def dollars(text: str) -> float:
    """``0.50`` or ``$0.50`` as dollars, or a ValueError saying what is wrong."""
    match = _DOLLARS.match(text if text.startswith("$") else f"${text}")
    value = float(match.group(1)) if match else math.nan
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not an amount in dollars: write it as $0.50.")
    return value


def tokens(text: str) -> int:
    """``200000``, ``200k`` or ``1.5m`` as a number of tokens, or a ValueError."""
    match = _TOKENS.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a number of tokens: write it as 200000 or 200k.")
    return int(float(match.group(1)) * _SCALE[match.group(2).lower()])


def changed(limits: Limits, words: list[str]) -> Limits:
    """The limits after ``%pi budget WORDS``: ``$0.50``, ``200k tokens``, ``off``;
    a ValueError in one sentence for anything else."""
    text = " ".join(words).strip()
    if text.lower() == "off":
        return Limits()
    if text.startswith("$"):
        return Limits(dollars(text), limits.tokens)
    number, _, unit = text.partition(" ")
    if unit.strip().lower() in ("tokens", "token"):
        return Limits(limits.usd, tokens(number))
    raise ValueError(f"{text!r} is not a budget: give {HOW}.")


@dataclass
class Spending:
    """What this kernel's Pi has spent: its turns, and its usage between them (the session's,
    over every Pi process it ran)."""

    total: UsageTally = field(default_factory=UsageTally)
    _between: Followed = field(default_factory=Followed)

    def add_turn(self, usage: UsageTally) -> None:
        self.total = self.total.plus(usage)

    def follow(self, side: UsageTally) -> None:
        """Take in the session's usage outside answers so far."""
        self.total = self.total.plus(self._between.added(side))


def over(limits: Limits, spent: UsageTally) -> str | None:
    """Which limit ``spent`` reached (``$0.52 of $0.50``), or None."""
    if limits.usd is not None and spent.cost >= limits.usd:
        return f"${spent.cost:.2f} of ${limits.usd:.2f}"
    if limits.tokens is not None and spent.tokens >= limits.tokens:
        return f"{spent.tokens:,} of {limits.tokens:,} tokens"
    return None


def run_limit(limits: Limits, before: UsageTally) -> Callable[[UsageTally], str | None]:
    """For a run that starts with ``before`` spent: why it must stop having spent
    ``run_usage`` (the notice its cell shows), or None."""

    def stop(run_usage: UsageTally) -> str | None:
        reached = over(limits, before.plus(run_usage))
        return None if reached is None else stop_notice(reached)

    return stop


def refusal(reached: str) -> str:
    """Why a new turn does not start."""
    return f"Pi's budget for this kernel is spent ({reached}); to go on: {HOW}."


def stop_notice(reached: str) -> str:
    """What an aborted turn's cell (and its transcript) says."""
    return f"Stopped: this turn took Pi's spending to {reached}, the budget; to go on: {HOW}."


def budget_line(limits: Limits, spent: UsageTally) -> str:
    """``$0.1234 and 12,345 tokens spent; limits: $0.50, none on tokens``."""
    text = f"${spent.cost:.4f} and {spent.tokens:,} tokens spent"
    if not limits.any:
        return f"{text}; no limit"
    usd = f"${limits.usd:.2f}" if limits.usd is not None else "none in dollars"
    count = f"{limits.tokens:,} tokens" if limits.tokens is not None else "none on tokens"
    return f"{text}; limits: {usd}, {count}"


def footer_part(limits: Limits, spent: UsageTally) -> str | None:
    """``$0.12 of $0.50`` (and/or tokens) for a cell's footer, when a limit is set."""
    parts = []
    if limits.usd is not None:
        parts.append(f"${spent.cost:.2f} of ${limits.usd:.2f}")
    if limits.tokens is not None:
        parts.append(f"{spent.tokens:,} of {limits.tokens:,} tokens")
    return " · ".join(parts) if parts else None
