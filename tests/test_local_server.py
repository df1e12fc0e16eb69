"""The local model's server: Pi's requests made fit for SmolLM2's chat template."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pi_kernel.local_server import FlattenContents, Message, flatten_contents


def chat(*messages: dict[str, Any]) -> bytes:
    return json.dumps({"model": "m", "stream": True, "messages": list(messages)}).encode()


def test_text_parts_become_one_string():
    body = chat(
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}],
        },
    )
    messages = json.loads(flatten_contents(body))["messages"]
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First.\nSecond."},
    ]


def test_a_tool_only_assistant_message_gets_empty_content():
    body = chat({"role": "assistant", "content": None, "tool_calls": [{"id": "t1"}]})
    (message,) = json.loads(flatten_contents(body))["messages"]
    assert message == {"role": "assistant", "content": "", "tool_calls": [{"id": "t1"}]}


def test_string_contents_and_other_fields_are_kept():
    body = json.dumps(
        {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 7, "stream": True}
    ).encode()
    assert json.loads(flatten_contents(body)) == json.loads(body)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"prompt": "no messages"}'])
def test_what_is_not_a_chat_request_passes_unchanged(body: bytes):
    assert flatten_contents(body) == body


@pytest.mark.anyio
async def test_the_middleware_hands_the_app_the_flattened_body_with_its_length():
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        seen["body"] = message["body"]
        seen["length"] = dict(scope["headers"])[b"content-length"]

    body = chat({"role": "user", "content": [{"type": "text", "text": "Hello"}]})
    pieces = [body[:10], body[10:]]  # a body that arrives in two messages

    async def receive() -> Message:
        return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}

    async def send(message: Message) -> None:
        raise AssertionError("the app under test sends nothing")

    scope = {
        "type": "http",
        "path": "/v1/chat/completions",
        "headers": [(b"content-length", str(len(body)).encode())],
    }
    await FlattenContents(app)(scope, receive, send)
    assert json.loads(seen["body"])["messages"] == [{"role": "user", "content": "Hello"}]
    assert seen["length"] == str(len(seen["body"])).encode()
