"""Usage Pi reports outside a run's assistant messages, summed per kind."""

from __future__ import annotations

from dataclasses import dataclass, field

from .protocol import Usage


@dataclass
class UsageTally:
    """Usage Pi reported outside assistant messages, summed (``entry_appended`` usage
    entries, Pi >= 1): idle prompt-cache warming is a cost the user pays between cells."""

    count: int = 0
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost: float = 0.0

    def add(self, usage: Usage) -> None:
        self.count += 1
        self.input += usage.input
        self.output += usage.output
        self.cache_read += usage.cache_read
        self.cache_write += usage.cache_write
        self.cost += usage.cost.total

    @property
    def tokens(self) -> int:
        """Every token counted: input, output, and prompt-cache reads and writes."""
        return self.input + self.output + self.cache_read + self.cache_write

    def plus(self, other: UsageTally) -> UsageTally:
        return UsageTally(
            self.count + other.count,
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
            self.cost + other.cost,
        )

    def since(self, earlier: UsageTally) -> UsageTally:
        """What was added after ``earlier`` (a copy taken from this tally)."""
        return UsageTally(
            self.count - earlier.count,
            self.input - earlier.input,
            self.output - earlier.output,
            self.cache_read - earlier.cache_read,
            self.cache_write - earlier.cache_write,
            self.cost - earlier.cost,
        )


@dataclass
class Followed:
    """A running tally, read now and then: what each read added since the one before."""

    seen: UsageTally = field(default_factory=UsageTally)

    def added(self, now: UsageTally) -> UsageTally:
        """What the tally ``now`` holds that the last read did not."""
        added, self.seen = now.since(self.seen), now
        return added
