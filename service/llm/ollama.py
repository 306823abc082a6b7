"""The Ollama backend: streams chat from ``/api/chat`` with the official ``ollama`` client.

Reasoning comes from ``message.thinking`` when the model has the ``thinking`` capability
(asked once through ``/api/show`` and cached), otherwise from ``<think>`` tags in the content
(:class:`~service.llm.reasoning.ThinkSplitter`). Content always passes through a splitter, so
stray tags never reach the answer and answer-leading whitespace is dropped either way.

Failures map to ``service.errors``:

* cannot connect (refused, DNS) -> ``ModelUnavailable``; a busy server (503) likewise;
* 404 for the model -> ``ModelMissing`` naming ``ollama pull <model>``;
* connect timeout, no first line within ``timeouts.first_token_s``, or the whole generation
  over ``timeouts.total_s`` -> ``ModelTimeout``;
* a non-JSON or malformed line, a dropped connection, a stream without its ``done`` line
  -> ``ModelProtocolError``; an ``{"error": ...}`` line mid-stream or another status
  -> ``ModelError``;
* no answer text by the end (token limit hit while reasoning, reasoning never closed, empty
  answer) -> ``NoAnswer``, raised after the reasoning received so far was yielded.

Connecting is retried (nothing was sent yet); once the request is out nothing is retried.
Closing or cancelling the iterator closes the HTTP response, so Ollama stops generating.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any, TypeVar, cast

import httpx
from ollama import AsyncClient, ChatResponse, ResponseError

from service.errors import (
    ModelError,
    ModelMissing,
    ModelProtocolError,
    ModelUnavailable,
    NoAnswer,
)
from service.llm.base import BackendHealth, ChatMessage, GenerationOptions, ModelDelta, ModelDone
from service.llm.reasoning import ThinkSplitter
from service.llm.transport import HEALTH_LIMIT_S, connect_retries, transport_errors
from service.settings import DEFAULT_CONTEXT_TOKENS, ServiceSettings, TimeoutSettings

T = TypeVar("T")
_TIMING_FIELDS = {
    "total": "total_duration",
    "load": "load_duration",
    "prompt_eval": "prompt_eval_duration",
    "eval": "eval_duration",
}


class OllamaBackend:
    """A :class:`~service.llm.base.ChatBackend` for one model on one Ollama server."""

    def __init__(
        self,
        *,
        host: str,
        model: str,
        timeouts: TimeoutSettings,
        context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    ) -> None:
        """``context_tokens``: the context window asked for (``options.num_ctx``)."""
        self._host = host
        self._model = model
        self._context_tokens = context_tokens
        self._timeouts = timeouts
        http_timeout = httpx.Timeout(
            connect=timeouts.connect_s,
            read=timeouts.first_token_s,  # also the longest silence between two lines
            write=timeouts.connect_s,
            pool=timeouts.connect_s,
        )
        self._client = AsyncClient(host=host, timeout=http_timeout)
        self._http = httpx.AsyncClient(base_url=host, timeout=http_timeout)
        self._capabilities: tuple[str, ...] | None = None

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> OllamaBackend:
        return cls(
            host=settings.ollama_host,
            model=settings.model,
            timeouts=settings.timeouts,
            context_tokens=settings.context_tokens,
        )

    @property
    def model(self) -> str:
        return self._model

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()

    async def health(self) -> BackendHealth:
        """Server reachable (``/api/version``); model pulled, and what it can do (``/api/show``)."""
        limit = min(HEALTH_LIMIT_S, self._timeouts.connect_s + self._timeouts.first_token_s)
        try:
            async with asyncio.timeout(limit):
                response = await self._http.get("/api/version")
                response.raise_for_status()
                version = str(response.json()["version"])
        except (httpx.HTTPError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            detail = f"model server at {self._host} is not reachable: {exc!r}"
            return BackendHealth(
                reachable=False, model_present=False, model=self._model, detail=detail
            )
        try:
            capabilities = await self.capabilities(refresh=True, limit_s=limit)
        except ModelError as exc:
            return BackendHealth(
                reachable=True, model_present=False, model=self._model, detail=exc.message
            )
        return BackendHealth(
            reachable=True,
            model_present=True,
            model=self._model,
            detail=f"ollama {version}",
            capabilities=capabilities,
        )

    async def capabilities(
        self, *, refresh: bool = False, limit_s: float | None = None
    ) -> tuple[str, ...]:
        """The model's capabilities from ``/api/show`` (cached after the first success)."""
        if self._capabilities is None or refresh:
            limit = limit_s if limit_s is not None else self._timeouts.first_token_s
            shown = await self._guard(self._client.show(self._model), limit, "asking for the model")
            self._capabilities = tuple(shown.capabilities or ())
        return self._capabilities

    async def stream_chat(
        self, messages: list[ChatMessage], options: GenerationOptions
    ) -> AsyncIterator[ModelDelta | ModelDone]:
        """Stream reasoning and answer deltas, then one ``ModelDone``."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._timeouts.total_s
        first_limit = min(self._timeouts.first_token_s, self._timeouts.total_s)
        think = await self._think_flag(options.think, first_limit)
        model_options: dict[str, Any] = {
            "temperature": options.temperature,
            "num_ctx": self._context_tokens,
        }
        if options.max_tokens is not None:
            model_options["num_predict"] = options.max_tokens
        payload = [{"role": m.role, "content": m.content} for m in messages]
        remaining = max(0.0, min(first_limit, deadline - loop.time()))
        stream, part = await self._guard(
            self._open(payload, think, model_options), remaining, "waiting for the first token"
        )
        first_token_ms = (loop.time() - started) * 1000
        splitter = ThinkSplitter(prefilled=False if think else None)
        thinking_chars = 0
        try:
            while True:
                if part.message.thinking:
                    thinking_chars += len(part.message.thinking)
                    yield ModelDelta("reasoning", part.message.thinking)
                for delta in splitter.feed(part.message.content or ""):
                    yield delta
                if part.done:
                    break
                part = await self._next(stream, deadline)
            for delta in splitter.finish():
                yield delta
        finally:
            await stream.aclose()
        reason = part.done_reason or "stop"
        if splitter.answer_chars == 0:
            if reason == "length":
                raise NoAnswer("the model hit its token limit before it finished reasoning")
            if splitter.unclosed:
                raise NoAnswer("the model's reasoning never closed; no answer followed")
            raise NoAnswer("the model returned an empty answer")
        timings = {
            name: getattr(part, field) / 1e6
            for name, field in _TIMING_FIELDS.items()
            if getattr(part, field) is not None
        }
        timings["first_token"] = first_token_ms
        timings["wall"] = (loop.time() - started) * 1000
        yield ModelDone(
            model=part.model or self._model,
            prompt_tokens=part.prompt_eval_count or 0,
            completion_tokens=part.eval_count or 0,
            reasoning_chars=thinking_chars + splitter.reasoning_chars,
            timings_ms=timings,
            finish_reason=reason,
        )

    async def _think_flag(self, wanted: bool | None, limit_s: float) -> bool | None:
        """``think`` for the request: only sent to models with the ``thinking`` capability."""
        capable = "thinking" in await self.capabilities(limit_s=limit_s)
        if not capable:
            return None
        return wanted if wanted is not None else True

    async def _open(
        self, payload: list[dict[str, str]], think: bool | None, options: dict[str, Any]
    ) -> tuple[AsyncGenerator[ChatResponse, None], ChatResponse]:
        """Send the request and read its first line; retry only failed connects."""
        async for attempt in connect_retries():
            with attempt:
                chunks = await self._client.chat(
                    model=self._model, messages=payload, stream=True, think=think, options=options
                )
                stream = cast(AsyncGenerator[ChatResponse, None], chunks)
                try:
                    first = await anext(stream)
                except StopAsyncIteration:
                    raise ModelProtocolError("the model server sent an empty stream") from None
                except BaseException:
                    await stream.aclose()
                    raise
                return stream, first
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _next(
        self, stream: AsyncGenerator[ChatResponse, None], deadline: float
    ) -> ChatResponse:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            return await self._guard(anext(stream), max(0.0, remaining), "generating")
        except StopAsyncIteration:
            raise ModelProtocolError("the stream ended without its final (done) line") from None

    async def _guard(self, call: Awaitable[T], limit_s: float, doing: str) -> T:
        """Await ``call`` within ``limit_s``, translating client failures to model errors."""
        try:
            async with transport_errors(self._host, self._model, doing, limit_s):
                return await call
        except ResponseError as exc:
            raise self._response_error(exc) from None
        except (ValueError, AttributeError, TypeError) as exc:
            # not JSON (JSONDecodeError), JSON but not an object (the client calls .get on it),
            # or an object that is not a chat chunk (pydantic ValidationError)
            raise ModelProtocolError(
                "the model server sent a malformed line", reason=str(exc)[:300]
            ) from None

    def _response_error(self, exc: ResponseError) -> ModelError:
        status, message = exc.status_code, str(exc.error)
        if status == 404 and "model" in message:
            return ModelMissing(
                f"model '{self._model}' is not on the model server; "
                f"run `ollama pull {self._model}`",
                model=self._model,
            )
        if status in (404, 405):
            return ModelUnavailable(
                f"{self._host} does not answer like an Ollama server ({status})", reason=message
            )
        if status == 503:
            return ModelUnavailable("the model server is busy or unavailable", reason=message)
        if status == -1:
            return ModelError(f"the model server failed mid-stream: {message}", model=self._model)
        return ModelError(f"the model server answered {status}: {message}", model=self._model)
