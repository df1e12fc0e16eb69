"""An async client for Pi's RPC mode (``pi --mode rpc``): JSON lines over stdin/stdout."""

from .client import (
    DialogDeclined,
    PiClient,
    Subscription,
    UIHandler,
    cancel_dialog,
    open_client,
)
from .errors import PiCommandError, PiError, PiExited, PiNotFound, PiProtocolError, PiTimeout
from .feed import ClientEvent, ClientNotice
from .launch import PiInstall, locate_pi
from .protocol import THINKING_LEVELS, ModelInfo, SessionState
from .run import Run, RunOutcome

__all__ = [
    "THINKING_LEVELS",
    "ClientEvent",
    "ClientNotice",
    "DialogDeclined",
    "ModelInfo",
    "PiClient",
    "PiCommandError",
    "PiError",
    "PiExited",
    "PiInstall",
    "PiNotFound",
    "PiProtocolError",
    "PiTimeout",
    "Run",
    "RunOutcome",
    "SessionState",
    "Subscription",
    "UIHandler",
    "cancel_dialog",
    "locate_pi",
    "open_client",
]
