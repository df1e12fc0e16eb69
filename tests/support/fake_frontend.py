"""A recording stand-in for IPython's ``display`` (the shape ``TurnDisplay`` calls), and a
clock the test moves: rendering tested without a kernel or sleeps."""

from __future__ import annotations

from collections.abc import Mapping

from pi_magics.render import EMPTY, Bundle


class Output:
    """One display output of the fake frontend: every bundle it was sent, in order."""

    def __init__(self, frontend: Frontend, bundle: Mapping[str, str]) -> None:
        self.frontend = frontend
        self.bundles = [dict(bundle)]

    def update(self, obj: Mapping[str, str], /, *, raw: bool) -> None:
        assert raw
        self.bundles.append(dict(obj))
        self.frontend.sends += 1

    @property
    def bundle(self) -> Bundle:
        return self.bundles[-1]


class Frontend:
    """Records what ``IPython.display.display(bundle, raw=True, display_id=True)`` would show."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self.sends = 0

    def __call__(self, obj: Mapping[str, str], /, *, raw: bool, display_id: bool) -> Output:
        assert raw
        assert display_id
        output = Output(self, obj)
        self.outputs.append(output)
        self.sends += 1
        return output

    def shown(self) -> list[Bundle]:
        """What the cell shows now, top to bottom, without cleared outputs."""
        return [output.bundle for output in self.outputs if output.bundle != EMPTY]

    def plain(self) -> list[str]:
        return [bundle["text/plain"] for bundle in self.shown()]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now
