"""A scripted OpenAI-compatible chat-completions server: the one test double of the suite.

Tests queue replies, point Pi at ``base_url`` (see ``tests.support.pi_env``) and assert on the
request bodies Pi sent. Each ``POST /v1/chat/completions`` pops the next reply; an empty queue
answers HTTP 400, which Pi does not retry, so a forgotten reply fails at once.

Streams use chunked transfer encoding on purpose: it is what a real provider sends, and it is
what lets a dropped connection look like a truncated body to Pi instead of a clean end.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NO_REPLY_MESSAGE",
    "NO_REPLY_STATUS",
    "Reply",
    "ScriptedLLM",
    "dropped",
    "dropped_then_answer",
    "error_then_answer",
    "failing_tool_then_answer",
    "http_error",
    "long_text",
    "multi_stage",
    "parallel_tools_then_answer",
    "stalled",
    "text",
    "thinking",
    "tool_calls",
    "tool_then_answer",
]

NO_REPLY_MESSAGE = "scripted LLM: no reply queued"
# Pi retries on the error *text* (429, 5xx, "timeout", "terminated", ...); "400 ..." matches none.
NO_REPLY_STATUS = 400

# Bounded shutdown: how often serve_forever looks at its shutdown flag, and how long close()
# waits for the serving thread and for streams still writing.
_POLL_INTERVAL_S = 0.05
_JOIN_TIMEOUT_S = 2.0
# Undelayed chunks are gathered into writes of about this size (100k-token benchmarks).
_WRITE_BATCH_BYTES = 64 * 1024

JSONDict = dict[str, Any]
ScriptedCall = tuple[str, JSONDict] | tuple[str, JSONDict, str]


@dataclass(frozen=True)
class Reply:
    """One scripted answer to one chat-completions request.

    ``chunks`` are the SSE payloads before the usage chunk and ``[DONE]``; the server fills in
    ``id``, ``object``, ``created`` and ``model`` when it sends them. A reply with ``status``
    other than 200 is sent as a JSON error body instead of a stream.
    """

    chunks: tuple[JSONDict, ...] = ()
    delay: float = 0.0
    completion_tokens: int = 0
    status: int = 200
    error_message: str = ""
    drop_after: int | None = None
    stall_after: int | None = None
    """With ``delay``: after this many chunks, send nothing for ``stall`` seconds."""
    stall: float = 0.0
    echo: bool = False
    """Answer with the prompts the request holds (``echo``): an answer that shows its
    context, as a page shows it."""


# -- reply builders ---------------------------------------------------------------------------

_WORDS = re.compile(r"\s*\S+\s*|\s+")


def _split(content: str, pieces: int | None) -> list[str]:
    """Word-sized pieces by default, else ``pieces`` near-equal slices (at least 1 char each)."""
    if not content:
        return []
    if pieces is None:
        return _WORDS.findall(content)
    count = max(1, min(pieces, len(content)))
    bounds = [len(content) * i // count for i in range(count + 1)]
    return [content[a:b] for a, b in itertools.pairwise(bounds)]


def _delta(delta: JSONDict, finish_reason: str | None = None) -> JSONDict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def _with_role(chunks: list[JSONDict]) -> list[JSONDict]:
    if chunks:
        chunks[0]["choices"][0]["delta"] = {"role": "assistant", **chunks[0]["choices"][0]["delta"]}
    return chunks


def _count_tokens(*parts: str) -> int:
    return sum(len(part.split()) for part in parts)


def text(content: str, *, pieces: int | None = None, delay: float = 0.0) -> Reply:
    """A plain answer streamed as ``delta.content``; ``delay`` seconds before each chunk."""
    chunks = [_delta({"content": piece}) for piece in _split(content, pieces)]
    chunks.append(_delta({}, "stop"))
    return Reply(tuple(_with_role(chunks)), delay=delay, completion_tokens=_count_tokens(content))


def echo() -> Reply:
    """An answer that says which prompts the model was sent: ``Sent: A / B / C.``"""
    return Reply(echo=True)


def thinking(thinking_text: str, answer_text: str, *, delay: float = 0.0) -> Reply:
    """Reasoning streamed as ``delta.reasoning_content``, then the answer as ``delta.content``."""
    chunks = [_delta({"reasoning_content": piece}) for piece in _split(thinking_text, None)]
    chunks += [_delta({"content": piece}) for piece in _split(answer_text, None)]
    chunks.append(_delta({}, "stop"))
    return Reply(
        tuple(_with_role(chunks)),
        delay=delay,
        completion_tokens=_count_tokens(thinking_text, answer_text),
    )


def _call_id(index: int, name: str, arguments: str) -> str:
    digest = hashlib.sha1(f"{index}:{name}:{arguments}".encode(), usedforsecurity=False)
    return f"call_{index}_{digest.hexdigest()[:8]}"


def tool_calls(*calls: ScriptedCall, text: str = "", delay: float = 0.0) -> Reply:
    """One assistant message calling tools; two or more calls are parallel tool calls.

    A call is ``(name, arguments)`` or ``(name, arguments, id)``; the default id is derived
    from the call, so pass an id when the same call must appear twice in one session.
    ``text`` is streamed first, giving a message with text content and tool calls.
    """
    if not calls:
        raise ValueError("tool_calls() needs at least one call")
    chunks = [_delta({"content": piece}) for piece in _split(text, None)]
    tokens = _count_tokens(text)
    for index, call in enumerate(calls):
        name, arguments = call[0], json.dumps(call[1])
        call_id = call[2] if len(call) == 3 else _call_id(index, name, arguments)
        function = {"name": name, "arguments": ""}
        opening = {"index": index, "id": call_id, "type": "function", "function": function}
        chunks.append(_delta({"tool_calls": [opening]}))
        for piece in _split(arguments, 3):
            fragment = {"index": index, "function": {"arguments": piece}}
            chunks.append(_delta({"tool_calls": [fragment]}))
        tokens += _count_tokens(arguments) + 1
    chunks.append(_delta({}, "tool_calls"))
    return Reply(tuple(_with_role(chunks)), delay=delay, completion_tokens=tokens)


def http_error(status: int = 500, message: str = "scripted LLM: internal server error") -> Reply:
    """An HTTP error with an OpenAI-style JSON body instead of a stream."""
    return Reply(status=status, error_message=message)


def dropped(content: str, *, after: int = 2) -> Reply:
    """Stream ``after`` chunks of ``content``, then close the connection: no finish, no [DONE]."""
    reply = text(content)
    return Reply(reply.chunks, completion_tokens=reply.completion_tokens, drop_after=after)


def stalled(content: str, *, after: int = 2, seconds: float = 30.0) -> Reply:
    """Stream ``after`` chunks of ``content``, then go silent for ``seconds`` (a provider
    that hangs mid-answer) before the rest; cut short when the client hangs up."""
    reply = text(content, delay=0.01)
    return Reply(
        reply.chunks,
        delay=reply.delay,
        completion_tokens=reply.completion_tokens,
        stall_after=after,
        stall=seconds,
    )


_LOREM = (
    "the quick brown fox jumps over a lazy dog while seven wizards quietly brew potent "
    "elixirs for every kernel notebook cell that streams tokens through pipes and sockets"
)


def long_text(n_tokens: int, *, words_per_chunk: int = 16, rate: float = 0.0) -> Reply:
    """About ``n_tokens`` deterministic words in many chunks, for throughput benchmarks:
    as fast as possible, or at ``rate`` words (tokens) a second."""
    vocabulary = _LOREM.split()
    size = len(vocabulary)
    words = [vocabulary[(i * 11 + i // size) % size] for i in range(n_tokens)]
    lines = [" ".join(words[i : i + 12]) for i in range(0, n_tokens, 12)]
    body = "\n".join(lines) + "\n"
    # Chunk on word boundaries so each delta is a plausible group of tokens.
    tokens = _WORDS.findall(body)
    pieces = [
        "".join(tokens[i : i + words_per_chunk]) for i in range(0, len(tokens), words_per_chunk)
    ]
    chunks = [_delta({"content": piece}) for piece in pieces]
    chunks.append(_delta({}, "stop"))
    delay = words_per_chunk / rate if rate > 0 else 0.0
    return Reply(tuple(_with_role(chunks)), delay=delay, completion_tokens=n_tokens)


# -- scenarios: the replies for common multi-request runs -------------------------------------


def tool_then_answer(
    command: str = "echo hello", answer: str = "The command printed hello."
) -> list[Reply]:
    """One bash tool call, then a text answer (two requests)."""
    return [tool_calls(("bash", {"command": command})), text(answer)]


def multi_stage() -> list[Reply]:
    """Text and a tool call, text and a tool call, then text (three requests)."""
    return [
        tool_calls(("bash", {"command": "echo one"}), text="First I will run step one."),
        tool_calls(("bash", {"command": "echo two"}), text="Step one printed one. Now step two."),
        text("Both steps ran: one, then two."),
    ]


def parallel_tools_then_answer(
    commands: Sequence[str] = ("echo alpha", "echo beta"),
    answer: str = "Both commands finished.",
) -> list[Reply]:
    """Several bash calls in one assistant message, then a text answer (two requests)."""
    return [tool_calls(*(("bash", {"command": c}) for c in commands)), text(answer)]


def failing_tool_then_answer(
    command: str = "echo failing >&2; exit 3", answer: str = "The command failed with exit 3."
) -> list[Reply]:
    """A bash call that exits non-zero (Pi reports ``isError: true``), then an answer."""
    return [tool_calls(("bash", {"command": command})), text(answer)]


def dropped_then_answer(
    content: str = "This answer is cut off in the mid", answer: str = "Recovered after the drop."
) -> list[Reply]:
    """A stream cut after two chunks (Pi retries: "terminated"), then a text answer."""
    return [dropped(content, after=2), text(answer)]


def error_then_answer(status: int = 500, answer: str = "Recovered after the error.") -> list[Reply]:
    """An HTTP error Pi retries (5xx), then a text answer (two requests)."""
    return [http_error(status), text(answer)]


# -- the server -------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines on stderr."""

    def do_GET(self) -> None:
        self._send_error(404, f"scripted LLM: no route for GET {self.path}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_error(404, f"scripted LLM: no route for POST {self.path}")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_error(400, "scripted LLM: request body is not JSON")
            return
        seq, reply = self.server.llm._record(body, dict(self.headers.items()))
        if reply is not None and reply.echo:
            reply = text(f"Sent: {' / '.join(user_texts(body))}.")
        if reply is None:
            self._send_error(NO_REPLY_STATUS, NO_REPLY_MESSAGE)
        elif reply.status != 200:
            self._send_error(reply.status, reply.error_message)
        else:
            self._stream(reply, body, seq)

    def _send_error(self, status: int, message: str) -> None:
        kind = "server_error" if status >= 500 else "invalid_request_error"
        payload = json.dumps({"error": {"message": message, "type": kind, "code": None}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, reply: Reply, body: JSONDict, seq: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        llm = self.server.llm
        try:
            payloads = _batched(_sse_payloads(reply, body, seq), reply.delay, llm._stop)
            for sent, data in enumerate(payloads):
                if sent == reply.stall_after and llm._stop.wait(reply.stall):
                    break
                self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            if llm._stop.is_set():
                llm._note_cut_stream()
            elif reply.drop_after is None:
                self.wfile.write(b"0\r\n\r\n")
                return
        except OSError:
            llm._note_cut_stream()
        self._drop()

    def _drop(self) -> None:
        """Close the socket without the terminating zero-length chunk."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _sse_payloads(reply: Reply, body: JSONDict, seq: int) -> Iterator[bytes]:
    model = body.get("model", "scripted")
    envelope = {
        "id": f"chatcmpl-scripted-{seq}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    chunks = reply.chunks if reply.drop_after is None else reply.chunks[: reply.drop_after]
    for chunk in chunks:
        yield b"data: %s\n\n" % json.dumps({**envelope, **chunk}).encode()
    if reply.drop_after is not None:
        return
    prompt_tokens = len(json.dumps(body.get("messages", []))) // 4
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": prompt_tokens + reply.completion_tokens,
    }
    yield b"data: %s\n\n" % json.dumps({**envelope, "choices": [], "usage": usage}).encode()
    yield b"data: [DONE]\n\n"


def _batched(payloads: Iterator[bytes], delay: float, stop: threading.Event) -> Iterator[bytes]:
    """Group payloads into HTTP chunks: one each after ``delay`` s, else about 64 KiB each.

    Ends early, without error, once ``stop`` is set.
    """
    pending: list[bytes] = []
    size = 0
    # Delayed chunks keep to a schedule, so a short delay gives a steady rate, not one
    # slowed by every wait's overshoot.
    due = time.monotonic()
    for payload in payloads:
        due += delay
        if stop.wait(max(0.0, due - time.monotonic())) if delay > 0 else stop.is_set():
            return
        if delay > 0:
            yield payload
            continue
        pending.append(payload)
        size += len(payload)
        if size >= _WRITE_BATCH_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    llm: ScriptedLLM

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-request is normal here (abort, shutdown): stay quiet."""


class ScriptedLLM:
    """A scripted chat-completions server on 127.0.0.1, serving in a daemon thread.

    ``with ScriptedLLM() as llm: llm.enqueue(text("hi"))``, point Pi at ``llm.base_url``, then
    assert on ``llm.requests`` (the parsed JSON bodies, in arrival order).
    """

    def __init__(self) -> None:
        self._replies: deque[Reply] = deque()
        self._requests: list[JSONDict] = []
        self._headers: list[dict[str, str]] = []
        self._cut_streams = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ScriptedLLM:
        if self._server is not None:
            raise RuntimeError("ScriptedLLM already started")
        self._stop.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.llm = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_S},
            name=f"scripted-llm-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; streams in flight end at their next chunk. Bounded, idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stop.set()
        server.shutdown()
        server.server_close()
        thread.join(_JOIN_TIMEOUT_S)
        self._server = self._thread = None

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ScriptedLLM is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        with self._changed:
            self._replies.extend(replies)

    def reset(self) -> None:
        """Forget queued replies and received requests (a server shared by several tests)."""
        with self._changed:
            self._replies.clear()
            self._requests.clear()
            self._headers.clear()
            self._cut_streams = 0

    @property
    def queued(self) -> int:
        """Replies not yet taken by a request."""
        with self._changed:
            return len(self._replies)

    @property
    def requests(self) -> list[JSONDict]:
        """The request bodies received so far (a copy)."""
        with self._changed:
            return list(self._requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """The request headers received so far, parallel to ``requests``."""
        with self._changed:
            return list(self._headers)

    @property
    def cut_streams(self) -> int:
        """Streams ended early because the client hung up (e.g. Pi's abort) or by close()."""
        with self._changed:
            return self._cut_streams

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[JSONDict]:
        """Block until at least ``n`` requests arrived; raise TimeoutError after ``timeout`` s."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(
                    f"scripted LLM: {len(self._requests)} of {n} requests after {timeout} s"
                )
            return list(self._requests)

    def wait_for_cut_streams(self, n: int = 1, timeout: float = 10.0) -> None:
        """Block until ``n`` streams were cut by the client (Pi notices an abort within ~0.1 s)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._cut_streams >= n, timeout):
                raise TimeoutError(
                    f"scripted LLM: {self._cut_streams} of {n} cut streams after {timeout} s"
                )

    def _record(self, body: JSONDict, headers: dict[str, str]) -> tuple[int, Reply | None]:
        with self._changed:
            self._requests.append(body)
            self._headers.append(headers)
            self._changed.notify_all()
            return len(self._requests), self._replies.popleft() if self._replies else None

    def _note_cut_stream(self) -> None:
        with self._changed:
            self._cut_streams += 1
            self._changed.notify_all()


# -- reading what Pi sent, and the tool turns the kernel tools tests script ---------------


def offered(request: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in request.get("tools", [])]


def user_texts(request: dict[str, Any]) -> list[str]:
    """The user messages of a request Pi sent, in order: the prompts the model saw."""
    texts = []
    for message in request["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, list):
            content = " ".join(part.get("text", "") for part in content)
        texts.append(str(content))
    return texts


def tool_result(request: dict[str, Any]) -> str:
    """The last tool result in a request Pi sent (the text the model reads)."""
    message = [m for m in request["messages"] if m["role"] == "tool"][-1]
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return str(content)


def llm_call_id(llm: ScriptedLLM, request: int) -> str:
    """The id of the tool call the scripted LLM answered request ``request`` with."""
    (message,) = [m for m in llm.requests[request + 1]["messages"] if m.get("tool_calls")][-1:]
    return str(message["tool_calls"][0]["id"])


def call(tool: str, answer: str = "Done.", **arguments: Any) -> list[Reply]:
    return [tool_calls((tool, arguments)), text(answer)]


def images_in(request: dict[str, Any]) -> list[str]:
    """The image URLs of every message part of a request (however Pi places them)."""
    found = []
    for message in request["messages"]:
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if part.get("type") == "image_url":
                found.append(part["image_url"]["url"])
    return found
