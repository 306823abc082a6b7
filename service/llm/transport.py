"""The transport-error guard both model backends (Ollama, OpenAI-compatible) await through.

``async with transport_errors(server, model, doing, limit_s):`` runs its body within
``limit_s`` and turns what the network did into ``service.errors``:

* the limit passed, or an httpx timeout -> ``ModelTimeout``;
* cannot connect (refused, DNS) -> ``ModelUnavailable`` naming the server;
* a broken or undecodable response -> ``ModelProtocolError``.

Protocol-specific failures (Ollama's ``ResponseError``, malformed lines) stay with each backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from service.errors import ModelProtocolError, ModelTimeout, ModelUnavailable

CONNECT_ERRORS = (httpx.ConnectError, ConnectionError)
"""Failures before anything was sent: safe to retry."""


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
