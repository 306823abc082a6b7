"""The transport policy both model backends (Ollama, OpenAI-compatible) share: the error
guard every call is awaited through, and the retry of failed connects.

``async with transport_errors(server, model, doing, limit_s):`` runs its body within
``limit_s`` and turns what the network did into ``service.errors``:

* the limit passed, or an httpx timeout -> ``ModelTimeout``;
* cannot connect (refused, DNS) -> ``ModelUnavailable`` naming the server;
* a broken or undecodable response -> ``ModelProtocolError``.

``connect_retries()``: retry a refused connect (nothing was sent yet), a few times with a
short backoff; once the request is out nothing is retried. Protocol-specific failures
(Ollama's ``ResponseError``, malformed lines) stay with each backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from service.errors import ModelProtocolError, ModelTimeout, ModelUnavailable

CONNECT_ERRORS = (httpx.ConnectError, ConnectionError)
"""Failures before anything was sent: safe to retry."""
CONNECT_ATTEMPTS = 3
HEALTH_LIMIT_S = 5.0  # a readiness probe must answer quickly


def connect_retries() -> AsyncRetrying:
    """``async for attempt in connect_retries(): with attempt: ...``: failed connects only."""
    return AsyncRetrying(
        retry=retry_if_exception_type(CONNECT_ERRORS),
        stop=stop_after_attempt(CONNECT_ATTEMPTS),
        wait=wait_exponential(multiplier=0.1, max=1.0),
        reraise=True,
    )


@asynccontextmanager
async def transport_errors(
    server: str, model: str, doing: str, limit_s: float
) -> AsyncIterator[None]:
    """Run the body within ``limit_s``; map transport failures to model errors."""
    try:
        async with asyncio.timeout(limit_s):
            yield
    except TimeoutError:
        raise ModelTimeout(
            f"model server timed out {doing} (limit {limit_s:.3g}s)", model=model
        ) from None
    except httpx.TimeoutException as exc:
        raise ModelTimeout(
            f"model server timed out {doing}: {type(exc).__name__}", model=model
        ) from None
    except CONNECT_ERRORS as exc:
        raise ModelUnavailable(
            f"cannot connect to the model server at {server}", reason=str(exc)
        ) from None
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise ModelProtocolError(
            f"the model server broke the response while {doing}", reason=repr(exc)
        ) from None
