"""What a notebook chooses from Pi: a model (``provider/id``) and a thinking level.

``Choices`` is what discovery reports (Pi's models, its state, the levels the current model
supports); the errors say what Pi does not offer, and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PiChoiceError
from .rpc.protocol import ModelInfo, SessionState


def parse_model_ref(ref: str) -> tuple[str, str]:
    """Split ``provider/id`` at the first ``/``; both parts must be non-empty, no spaces."""
    provider, slash, model_id = ref.partition("/")
    if not slash or not provider or not model_id or any(c.isspace() for c in ref):
        raise PiChoiceError(
            f"{ref!r} is not a model reference: write provider/model-id, e.g. anthropic/claude"
        )
    return provider, model_id


@dataclass
class Choices:
    """What Pi offers and what it is set to: the models, the current one, the levels that
    model supports and the effective level (Pi clamps silently, so it is read back)."""

    models: list[ModelInfo]
    state: SessionState
    levels: list[str]

    @property
    def model(self) -> ModelInfo | None:
        return self.state.model

    @property
    def model_ref(self) -> str | None:
        return self.state.model_ref

    @property
    def level(self) -> str:
        return self.state.thinking_level
