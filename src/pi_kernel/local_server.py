"""The local model's server process: llama-cpp-python's OpenAI-compatible app, made fit for Pi.

``python -m pi_kernel.local_server --model PATH --context N`` binds a free port on
127.0.0.1, loads the weights, prints ``ready <base url>`` on stdout (the one line it writes
there; its log goes to stderr) and serves until SIGTERM.

Pi sends message contents as lists of text parts, as the OpenAI API allows; SmolLM2's chat
template concatenates ``message['content']`` as a string, and llama-cpp-python then fails
inside the stream and sends an empty one.  ``flatten_contents`` rewrites each chat request
before the app sees it.  Imported only in that process: it needs ``pi-kernel[local]``.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HOST = "127.0.0.1"


def flatten_contents(body: bytes) -> bytes:
    """A chat request whose message contents are all strings (text parts joined).

    A body that is not a JSON chat request is returned as it is, for the app to reject.
    """
    try:
        request = json.loads(body)
    except ValueError:
        return body
    messages = request.get("messages") if isinstance(request, dict) else None
    if not isinstance(messages, list):
        return body
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):
            message["content"] = "\n".join(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
        elif content is None:
            message["content"] = ""  # an assistant turn that only called tools
    return json.dumps(request).encode()


class FlattenContents:
    """ASGI middleware: ``flatten_contents`` on every chat completion request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = flatten_contents(b"".join(chunks))
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: the disconnect, when it comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pi_kernel.local_server")
    parser.add_argument("--model", required=True, help="the GGUF file to serve")
    parser.add_argument("--context", type=int, required=True, help="context size in tokens")
    args = parser.parse_args(argv)

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    # Bound before the model loads: the port is ours from here on, with no race.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(128)  # requests made while the weights load wait in the backlog
    port = listener.getsockname()[1]
    app = create_app(
        server_settings=ServerSettings(host=HOST, port=port),
        model_settings=[ModelSettings(model=args.model, n_ctx=args.context, verbose=False)],
    )
    server = uvicorn.Server(
        uvicorn.Config(FlattenContents(app), log_level="info", access_log=True, lifespan="off")
    )
    print(f"ready http://{HOST}:{port}/v1", flush=True)
    server.run(sockets=[listener])
    return 0


if __name__ == "__main__":
    sys.exit(main())
