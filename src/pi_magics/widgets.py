"""The picker: Pi's model and thinking level, chosen from dropdowns that Pi itself fills.

Everything shown comes from discovery (``PiSession.choices``): the models Pi offers, the
levels the current model supports, the level Pi actually set.  Nothing is made up when
discovery fails: the dropdowns are disabled and the status line says why (Pi missing, no
credentials, or no answer in time, with a retry).

ipykernel handles widget messages between cells, so a choice made while a cell runs takes
effect when it has finished; the status line says so.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import ipywidgets as widgets

from pi_kernel.bridge import Bridge
from pi_kernel.choices import Choices
from pi_kernel.errors import PiNoModels
from pi_kernel.rpc.errors import PiError, PiNotFound, PiTimeout
from pi_kernel.rpc.protocol import ModelInfo
from pi_kernel.session import PiSession

NEXT_CELL_NOTE = "Changes apply from the next cell; a running cell keeps what it started with."
_ERROR_STYLE = "color: var(--jp-error-color1, #c62828)"
_MUTED_STYLE = "color: var(--jp-ui-font-color2, #757575)"


def model_options(models: list[ModelInfo]) -> list[tuple[str, str]]:
    """``(label, provider/id)`` pairs, by provider then name; the id is added to a label
    only where two models of one provider share a name."""
    names = [(model.provider, model.name or model.id) for model in models]
    options = []
    for model, (provider, name) in zip(models, names, strict=True):
        label = f"{provider} / {name}"
        if names.count((provider, name)) > 1:
            label += f" ({model.id})"
        options.append((label, model.ref))
    return sorted(options, key=lambda option: (option[1].split("/", 1)[0], option[0].lower()))


def unavailable_label(error: PiError) -> str:
    """What the disabled model dropdown says, by kind of failure."""
    if isinstance(error, PiNotFound):
        return "Pi not found"
    if isinstance(error, PiNoModels):
        return "no models: no credentials"
    if isinstance(error, PiTimeout):
        return "Pi did not answer"
    return "Pi is not available"


class Picker:
    """The widgets, and the calls to the session behind them.  ``widget`` is what is shown."""

    def __init__(self, session: PiSession, bridge: Bridge) -> None:
        self.session = session
        self.bridge = bridge
        self.choices: Choices | None = None
        self._starts = -1
        """``session.starts`` when last shown: another value means a new Pi runs now."""
        self.error: PiError | None = None
        """The last failure (discovery, or Pi refusing a choice), shown in the status line."""
        self._filling = False

        self.model = widgets.Dropdown(description="Model", disabled=True)
        self.thinking = widgets.Dropdown(description="Thinking", disabled=True)
        self.refresh_button = widgets.Button(
            description="Refresh", icon="refresh", tooltip="Ask Pi again for its models"
        )
        self.custom = widgets.Text(
            description="Other", placeholder="provider/model-id", disabled=True
        )
        self.use_button = widgets.Button(
            description="Use", tooltip="Ask Pi to use this model", disabled=True
        )
        self.status = widgets.HTML()
        choose = widgets.HBox([self.model, self.thinking, self.refresh_button])
        other = widgets.HBox([self.custom, self.use_button])
        self.widget = widgets.VBox([choose, other, self.status])
        self._widgets: list[widgets.Widget] = [
            *choose.children,
            *other.children,
            self.status,
            choose,
            other,
            self.widget,
        ]
        self.model.observe(self._on_model, names="value")
        self.thinking.observe(self._on_thinking, names="value")
        self.refresh_button.on_click(lambda _: self.refresh(models=True))
        self.use_button.on_click(lambda _: self.use_custom())

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widgets for a live frontend; for a saved notebook read without a kernel (or
        nbconvert), a line saying what was chosen instead of the widgets' Python repr."""
        bundle: dict[str, Any] | None = self.widget._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = f"Pi picker: {self.summary()}"
        return bundle

    def summary(self) -> str:
        if self.choices is None:
            return str(self.error) if self.error is not None else "not filled yet"
        state = self.choices.state
        model = state.model_ref or "no model"
        return f"{model} · thinking {state.thinking_level}"

    # -- actions ---------------------------------------------------------------------------

    def refresh(self, *, models: bool = False) -> None:
        """Discovery again: the current state and levels; Pi's models too when ``models``
        (otherwise the list Pi gave this session is reused)."""
        try:
            choices = self.bridge.call(partial(self.session.choices, refresh=models))
        except PiError as exc:
            self._unavailable(exc)
            return
        self.error = None
        self._show(choices)

    def follow(self) -> None:
        """After a cell: if a new Pi started since the last refresh (a restart, or Pi died),
        show what the new one runs with.  Costs nothing when it is the same Pi."""
        if self.session.starts != self._starts:
            self.refresh()

    def use_custom(self) -> None:
        """Ask Pi to use the model typed in the text box; kept only if Pi accepts it."""
        self._choose(partial(self.session.set_notebook_model, self.custom.value))

    def close(self) -> None:
        """Close every widget (the frontend forgets them)."""
        for widget in self._widgets:
            widget.close()

    # -- what the widgets show ---------------------------------------------------------------

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        # Changing a dropdown's options makes ipywidgets select the first one, and setting a
        # value fires the observers: neither may reach Pi as a choice.
        self._filling = True
        try:
            yield
        finally:
            self._filling = False

    def _show(self, choices: Choices) -> None:
        self.choices = choices
        self._starts = self.session.starts
        options = model_options(choices.models)
        current = choices.model_ref
        with self._quietly():
            self.model.options = options
            self.model.value = current if current in dict(options).values() else None
            self.model.disabled = False
            self.thinking.options = choices.levels
            self.thinking.value = choices.level if choices.level in choices.levels else None
            # A model without reasoning offers only "off": shown, but nothing to choose.
            self.thinking.disabled = len(choices.levels) <= 1
            self.custom.disabled = self.use_button.disabled = False
        self.refresh_button.description = "Refresh"
        self._status()

    def _unavailable(self, error: PiError) -> None:
        self.choices = None
        self._starts = self.session.starts  # follow() waits for a Pi that did start
        self.error = error
        with self._quietly():
            self.model.options = [(unavailable_label(error), None)]
            self.model.value = None
            self.thinking.options = []
            self.model.disabled = self.thinking.disabled = True
            self.custom.disabled = self.use_button.disabled = True
        self.refresh_button.description = "Retry" if isinstance(error, PiTimeout) else "Refresh"
        self._status()

    def _status(self) -> None:
        parts = []
        install = self.session.install
        if install is not None:
            parts.append(f"{install.package or 'pi'} {install.version or '(version unknown)'}")
        if self.choices is not None:
            state = self.choices.state
            if state.session_id:
                parts.append(f"session {state.session_id[:8]}")
            parts.append(state.model_ref or "no model")
            parts.append(f"thinking {state.thinking_level}")
        line = f'<span style="{_MUTED_STYLE}">{html.escape(" · ".join(parts))}</span>'
        lines = [line] if parts else []
        if self.error is not None:
            message = " ".join(filter(None, [str(self.error), self.error.hint]))
            lines.append(f'<span style="{_ERROR_STYLE}">{html.escape(message)}</span>')
        if self.choices is not None:
            lines.append(f'<span style="{_MUTED_STYLE}">{html.escape(NEXT_CELL_NOTE)}</span>')
        self.status.value = "<br>".join(lines)

    # -- choices ---------------------------------------------------------------------------

    def _on_model(self, change: dict[str, Any]) -> None:
        if self._filling or change["new"] is None:
            return
        self._choose(partial(self.session.set_notebook_model, change["new"]))

    def _on_thinking(self, change: dict[str, Any]) -> None:
        if self._filling or change["new"] is None:
            return
        self._choose(partial(self.session.set_notebook_thinking_level, change["new"]))

    def _choose(self, choose: Callable[[], Awaitable[Choices]]) -> None:
        """Ask Pi; show what it then runs with, or put the dropdowns back and say why."""
        try:
            choices = self.bridge.call(choose)
        except PiError as exc:
            if self.choices is None:
                self._unavailable(exc)
            else:
                self.error = exc
                self._show(self.choices)  # back to what Pi still runs with
            return
        self.error = None
        self._show(choices)
