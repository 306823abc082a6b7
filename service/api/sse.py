"""Server-Sent Events, and cancelling work when the client goes away.

``EventStream`` is a streaming response that watches for ``http.disconnect`` while it
streams: when the client leaves, the event iterator is cancelled at once (which
cancels the model request behind it), even while it waits for the model's first
token. ``until_disconnected`` does the same for a non-streaming handler.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from service.errors import ServiceError

T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}  # answers are private


def event(name: str | None, data: Any) -> bytes:
    """One SSE frame; ``data`` is JSON on a single line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n".encode()


def comment(text: str = "keep-alive") -> bytes:
    """An SSE comment line: clients ignore it; proxies see traffic."""
    return f": {text}\n\n".encode()


class EventStream(StreamingResponse):
    """``text/event-stream`` response; a client disconnect cancels the iterator."""

    media_type = "text/event-stream"

    def __init__(
        self, content: AsyncIterator[bytes], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(content, headers={**SSE_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stream_then_stop() -> None:
                try:
                    await self.stream_response(send)
                except OSError:  # the socket went away mid-write
                    pass
                group.cancel_scope.cancel()

            group.start_soon(stream_then_stop)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()


class ClientGone(ServiceError):
    """The client disconnected before the answer was ready (nobody reads this response)."""

    code = "client_closed_request"
    status = 499


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise ``ClientGone``."""
    outcome: list[T] = []
    failure: list[Exception] = []

    async with anyio.create_task_group() as group:

        async def run() -> None:
            try:
                outcome.append(await work)
            except Exception as exc:  # re-raised below, outside the task group
                failure.append(exc)
            group.cancel_scope.cancel()

        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(run)
        group.start_soon(watch)
    if failure:
        raise failure[0]
    if outcome:
        return outcome[0]
    raise ClientGone("the client closed the request")
