"""The OpenAI-compatible backend: streams ``/v1/chat/completions`` from vLLM, llama.cpp's
server, LM Studio, Ollama's ``/v1`` or any server speaking that protocol, over httpx.

Reasoning arrives in one of three ways, all handled: ``delta.reasoning_content`` (vLLM's
deepseek_r1 parser, llama.cpp), ``delta.reasoning`` (Ollama's ``/v1``), or raw ``<think>``
text inside ``delta.content``, split by :class:`~service.llm.reasoning.ThinkSplitter`.
Content always passes through a splitter. Where tags are expected is ``think_tags``:
``"auto"`` (R1 through a server without a reasoning parser: the answer is held back until
the first tag shows where it starts), ``"prefilled"`` (the template opens ``<think>``) or
``"answer_first"`` (models that do not reason: the answer streams at once; any ``<think>``
block is still split off). Once the server sends a reasoning field, content is answer.

Failures map to ``service.errors`` like the Ollama backend:

* cannot connect -> ``ModelUnavailable``; 401/403 (key refused), 503 and a URL that is not an
  OpenAI-compatible API (404 without a model error) likewise;
* the model unknown to the server (404 naming the model) -> ``ModelMissing``;
* connect timeout, no first token within ``timeouts.first_token_s``, the whole generation
  over ``timeouts.total_s`` -> ``ModelTimeout``;
* a malformed event, a dropped connection, a stream without its end -> ``ModelProtocolError``;
  an ``error`` event mid-stream or another status -> ``ModelError``;
* no answer text by the end (reasoning never closed, token limit, empty) -> ``NoAnswer``,
  raised after the reasoning received so far was yielded.

Connecting is retried (nothing was sent yet); once the request is out nothing is retried.
Closing or cancelling the iterator closes the HTTP response, so the server stops generating.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from typing import Any, Literal, TypeVar

import httpx

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
from service.settings import ServiceSettings, TimeoutSettings

T = TypeVar("T")
ThinkTags = Literal["auto", "prefilled", "answer_first"]
REASONING_FIELDS = ("reasoning_content", "reasoning")
_DONE = object()  # the ``data: [DONE]`` sentinel
_PREFILLED: dict[ThinkTags, bool | None] = {
    "auto": None,
    "prefilled": True,
    "answer_first": False,
}


class OpenAIBackend:
    """A :class:`~service.llm.base.ChatBackend` for one model on an OpenAI-compatible server."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        timeouts: TimeoutSettings,
        api_key: str | None = None,
        think_tags: ThinkTags = "auto",
        label: str | None = None,
        stop: Sequence[str] = (),
        max_tokens: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``label``: the name reported as ``model``; ``stop``: stop sequences sent with every
        request; ``max_tokens``: a cap on generated tokens whatever the request asks."""
        self._base_url = base_url.rstrip("/")
        self._stop = list(stop)
        self._max_tokens = max_tokens
        self._model = model
        self._label = label or model
        self._timeouts = timeouts
        self._think_tags: ThinkTags = think_tags
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self._base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(
                connect=timeouts.connect_s,
                read=timeouts.first_token_s,  # also the longest silence between two events
                write=timeouts.connect_s,
                pool=timeouts.connect_s,
            ),
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> OpenAIBackend:
        key = settings.openai.api_key
        return cls(
            base_url=settings.openai.base_url,
            model=settings.model,
            timeouts=settings.timeouts,
            api_key=key.get_secret_value() if key else None,
            think_tags=settings.openai.think_tags,
        )

    @property
    def model(self) -> str:
        """The name reported to callers (a label such as the demo model's, or the model id)."""
        return self._label

    @property
    def base_url(self) -> str:
        return self._base_url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def health(self) -> BackendHealth:
        """Server reachable and the model listed by ``GET /v1/models``."""
        limit = min(HEALTH_LIMIT_S, self._timeouts.connect_s + self._timeouts.first_token_s)
        try:
            ids = await self._guard(self.list_models(), limit, "listing models")
        except ModelUnavailable as exc:
            return BackendHealth(False, False, self._label, detail=exc.message)
        except ModelError as exc:
            return BackendHealth(True, False, self._label, detail=exc.message)
        if self._model not in ids:
            detail = f"model {self._model!r} is not served at {self._base_url} (has: {ids[:10]})"
            return BackendHealth(True, False, self._label, detail=detail)
        return BackendHealth(True, True, self._label, detail=f"openai-compatible {self._base_url}")

    async def list_models(self) -> list[str]:
        """Model ids the server lists."""
        response = await self._http.get("models")
        if response.status_code != 200:
            raise self._status_error(response.status_code, response.text)
        data = response.json().get("data")
        if not isinstance(data, list):
            raise ModelProtocolError("GET /v1/models did not return a model list")
        return [str(m.get("id")) for m in data if isinstance(m, dict)]

    async def stream_chat(
        self, messages: list[ChatMessage], options: GenerationOptions
    ) -> AsyncIterator[ModelDelta | ModelDone]:
        """Stream reasoning and answer deltas, then one ``ModelDone``."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._timeouts.total_s
        first_limit = min(self._timeouts.first_token_s, self._timeouts.total_s)
        payload: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": options.temperature,
        }
        caps = [n for n in (options.max_tokens, self._max_tokens) if n is not None]
        if caps:
            payload["max_tokens"] = min(caps)
        if self._stop:
            payload["stop"] = self._stop
        response = await self._guard(self._open(payload), first_limit, "connecting")
        events = _sse_events(response)
        splitter: ThinkSplitter | None = None
        structured = False  # the server separates reasoning itself
        reasoning_chars = 0
        pieces = 0  # streamed chunks with text: the token count when the server sends no usage
        first_token_ms: float | None = None
        usage: dict[str, Any] = {}
        finish: str | None = None
        try:
            while True:
                if first_token_ms is None:
                    limit = min(first_limit - (loop.time() - started), deadline - loop.time())
                    doing = "waiting for the first token"
                else:
                    limit, doing = deadline - loop.time(), "generating"
                event = await self._guard(_next_event(events), max(0.0, limit), doing)
                if event is _DONE or event is None:
                    if event is None and finish is None:
                        raise ModelProtocolError("the stream ended before the completion did")
                    break
                assert isinstance(event, dict)
                usage = event.get("usage") or usage
                choice = _first_choice(event)
                if choice is None:
                    continue
                delta = choice.get("delta") or {}
                if not isinstance(delta, dict):
                    raise ModelProtocolError("a stream chunk has a malformed delta")
                finish = choice.get("finish_reason") or finish
                reasoning = next((delta[k] for k in REASONING_FIELDS if delta.get(k)), "")
                content = delta.get("content") or ""
                if reasoning or content:
                    pieces += 1
                    if first_token_ms is None:
                        first_token_ms = (loop.time() - started) * 1000
                if reasoning:
                    structured = True
                    reasoning_chars += len(reasoning)
                    yield ModelDelta("reasoning", str(reasoning))
                if content:
                    if splitter is None:
                        prefilled = False if structured else _PREFILLED[self._think_tags]
                        splitter = ThinkSplitter(prefilled=prefilled)
                    for piece in splitter.feed(str(content)):
                        yield piece
        finally:
            await events.aclose()
            await response.aclose()
        if splitter is not None:
            for piece in splitter.finish():
                yield piece
        if splitter is None or splitter.answer_chars == 0:
            if finish == "length":
                raise NoAnswer("the model hit its token limit before it finished reasoning")
            if splitter is not None and splitter.unclosed:
                raise NoAnswer("the model's reasoning never closed; no answer followed")
            raise NoAnswer("the model returned an empty answer")
        wall_ms = (loop.time() - started) * 1000
        yield ModelDone(
            model=self._label,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or pieces),
            reasoning_chars=reasoning_chars + splitter.reasoning_chars,
            timings_ms={"first_token": first_token_ms or wall_ms, "wall": wall_ms},
            finish_reason=finish or "stop",
        )

    async def _open(self, payload: dict[str, Any]) -> httpx.Response:
        """Send the request and get the response headers; retry only failed connects."""
        async for attempt in connect_retries():
            with attempt:
                request = self._http.build_request("POST", "chat/completions", json=payload)
                response = await self._http.send(request, stream=True)
                if response.status_code != 200:
                    try:
                        body = (await response.aread()).decode("utf-8", "replace")
                    finally:
                        await response.aclose()
                    raise self._status_error(response.status_code, body)
                return response
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _guard(self, call: Awaitable[T], limit_s: float, doing: str) -> T:
        """Await ``call`` within ``limit_s``, translating transport failures to model errors."""
        async with transport_errors(self._base_url, self._model, doing, limit_s):
            return await call
        raise AssertionError("unreachable: the guard returns or raises")  # pragma: no cover

    def _status_error(self, status: int, body: str) -> ModelError:
        message = _error_message(body)
        lowered = message.lower()
        if status == 404 and ("model" in lowered or "does not exist" in lowered):
            return ModelMissing(
                f"model {self._model!r} is not served at {self._base_url}; load it on that"
                " server or set INHOUSE_MODEL to one it lists at /v1/models",
                model=self._model,
            )
        if status in (401, 403):
            return ModelUnavailable(
                f"the model server at {self._base_url} refused the API key ({status});"
                " set INHOUSE_OPENAI__API_KEY",
                reason=message,
            )
        if status in (404, 405):
            return ModelUnavailable(
                f"{self._base_url} does not answer like an OpenAI-compatible API ({status});"
                " the base URL usually ends in /v1",
                reason=message,
            )
        if status == 503:
            return ModelUnavailable("the model server is busy or unavailable", reason=message)
        return ModelError(f"the model server answered {status}: {message}", model=self._model)


def _error_message(body: str) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the body itself (cut)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return body[:300]
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error or body)[:300]


async def _sse_events(response: httpx.Response) -> AsyncGenerator[dict[str, Any] | object, None]:
    """Parsed ``data:`` payloads of a Server-Sent Events body, then ``_DONE`` if sent."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield _parse_event("\n".join(data))
                data = []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name not in ("event", "id", "retry"):
            raise ModelProtocolError("the model server sent a malformed event", line=line[:200])
    if data:
        yield _parse_event("\n".join(data))


def _parse_event(data: str) -> dict[str, Any] | object:
    if data.strip() == "[DONE]":
        return _DONE
    try:
        event = json.loads(data)
    except ValueError:
        raise ModelProtocolError(
            "the model server sent an event that is not JSON", data=data[:200]
        ) from None
    if not isinstance(event, dict):
        raise ModelProtocolError("the model server sent an event that is not an object")
    if "error" in event:
        error = event["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise ModelError(f"the model server failed mid-stream: {message}")
    return event


async def _next_event(events: AsyncIterator[dict[str, Any] | object]) -> dict[str, Any] | object:
    """The next event, or ``None`` when the body ended."""
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


def _first_choice(event: dict[str, Any]) -> dict[str, Any] | None:
    choices = event.get("choices")
    if choices is None or choices == []:
        return None  # e.g. the final usage chunk
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise ModelProtocolError("a stream chunk has malformed choices")
    return choices[0]
