"""The contract every model backend meets (Ollama today; OpenAI-compatible servers later).

A backend streams ``ModelDelta`` items: answer text and reasoning text already
separated (whether the server sends ``message.thinking`` or raw ``<think>`` tags),
then exactly one ``ModelDone`` with usage and timings. Failures are raised as the
``service.errors`` model errors (``ModelUnavailable``, ``ModelMissing``,
``ModelTimeout``, ``ModelProtocolError``, ``NoAnswer``) with stable codes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn sent to the model. R1 takes no system prompt: instructions go in a user turn."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ModelDelta:
    """A piece of streamed output: ``answer`` text or ``reasoning`` text, never mixed."""

    kind: Literal["answer", "reasoning"]
    text: str


@dataclass(frozen=True, slots=True)
class ModelDone:
    """End of a successful stream."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_chars: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    finish_reason: str = "stop"


@dataclass(frozen=True, slots=True)
class BackendHealth:
    """What /readyz reports about the model server."""

    reachable: bool
    model_present: bool
    model: str
    detail: str = ""
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    temperature: float = 0.6
    max_tokens: int | None = None
    think: bool | None = None  # None: decide from the model's capabilities


class ChatBackend(Protocol):
    """A streaming chat model. Cancelling the iterator must cancel the server request."""

    @property
    def model(self) -> str: ...

    async def health(self) -> BackendHealth: ...

    def stream_chat(
        self, messages: list[ChatMessage], options: GenerationOptions
    ) -> AsyncIterator[ModelDelta | ModelDone]: ...

    async def aclose(self) -> None: ...
