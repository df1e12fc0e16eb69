"""What a subscriber of the client receives: Pi's events and the client's own notices, in
order, on an unbounded feed that also carries the responses to the ids it watches.

A leaf beside ``protocol``: the client fills feeds, a ``Run`` reads one, and neither needs the
other's module for it.
"""

from __future__ import annotations

import math
from typing import Literal

import anyio

from .protocol import Event, ExtensionUIRequest, Response, WireModel


class ClientNotice(WireModel):
    """Something the client did on the user's behalf that the user should see."""

    type: Literal["client_notice"] = "client_notice"
    level: Literal["info", "warning", "error"] = "info"
    message: str


ClientEvent = Event | ExtensionUIRequest | ClientNotice
"""What subscribers receive: Pi's events, its extension UI requests, and client notices."""


FeedItem = ClientEvent | Response
"""An event for every subscriber, or a response to an id this feed watches."""


class Feed:
    """An unbounded, ordered feed of events, plus the responses to ids it watches."""

    def __init__(self) -> None:
        self.send, self.receive = anyio.create_memory_object_stream[FeedItem](math.inf)
        self.watched: set[str] = set()
