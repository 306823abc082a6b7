"""The configured model server when it can answer, else the local demo model.

``demo_model.use``: ``auto`` asks the configured backend's ``health()`` (at most every
``recheck_s`` seconds) and answers with it whenever it is reachable and has the model;
otherwise the local demo model (:mod:`service.llm.local_model`) is started once, on first
need, and answers, labelled as the demo model. ``always`` skips the configured server.
When the demo model is not installed, the configured backend's own errors pass through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from service.llm import local_model
from service.llm.base import (
    BackendHealth,
    ChatBackend,
    ChatMessage,
    GenerationOptions,
    ModelDelta,
    ModelDone,
)
from service.llm.openai_compat import OpenAIBackend
from service.settings import ServiceSettings

log = logging.getLogger(__name__)


class DemoModelLauncher:
    """Starts the local demo model on first need: GGUF assembled once, then its server."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._settings = settings
        self._server: local_model.LocalModelServer | None = None

    def available(self) -> bool:
        return local_model.available()

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.running

    async def start(self) -> OpenAIBackend:
        settings = self._settings
        folder = local_model.models_dir(settings)
        gguf = await asyncio.to_thread(local_model.ensure_gguf, folder)
        server = local_model.LocalModelServer(gguf, settings.demo_model, folder / "demo-model.log")
        await server.start()
        self._server = server
        return server.backend(settings.timeouts)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None


class Launcher(Protocol):
    """What the fallback needs from whatever runs the demo model."""

    def available(self) -> bool: ...

    @property
    def running(self) -> bool: ...

    async def start(self) -> ChatBackend: ...

    async def stop(self) -> None: ...


class DemoFallbackBackend:
    """A :class:`ChatBackend` that routes each request to the primary or the demo model."""

    def __init__(
        self,
        primary: ChatBackend,
        settings: ServiceSettings,
        *,
        launcher: Launcher | None = None,
        recheck_s: float = 10.0,
    ) -> None:
        self._primary = primary
        self._settings = settings
        self._launcher: Launcher = launcher or DemoModelLauncher(settings)
        self._recheck_s = recheck_s
        self._local: ChatBackend | None = None
        self._lock = asyncio.Lock()
        self._checked_at = float("-inf")
        self._primary_ok = False
        self._primary_health: BackendHealth | None = None

    @property
    def model(self) -> str:
        if self.using_demo and self._local is not None:
            return self._local.model
        return self._primary.model

    @property
    def using_demo(self) -> bool:
        """Whether the last decision picked the demo model."""
        return self._local is not None and not self._primary_ok

    async def health(self) -> BackendHealth:
        primary = await self._check_primary(force=True)
        if primary.reachable and primary.model_present:
            return primary
        if not self._launcher.available():
            return primary
        try:
            local = await self._ensure_local()
        except Exception as exc:  # report, never raise, from a readiness probe
            detail = f"{primary.detail}; the demo model failed to start: {exc}"
            return BackendHealth(False, False, local_model.DEMO_MODEL_LABEL, detail=detail)
        health = await local.health()
        reason = primary.detail or "the configured model is unavailable"
        return BackendHealth(
            health.reachable,
            health.model_present,
            local.model,
            detail=f"{reason}; answering with the demo model",
        )

    async def stream_chat(
        self, messages: list[ChatMessage], options: GenerationOptions
    ) -> AsyncIterator[ModelDelta | ModelDone]:
        backend = await self._choose()
        async for item in backend.stream_chat(messages, options):
            yield item

    async def _choose(self) -> ChatBackend:
        health = await self._check_primary()
        if (health.reachable and health.model_present) or not self._launcher.available():
            return self._primary
        return await self._ensure_local()

    async def _check_primary(self, *, force: bool = False) -> BackendHealth:
        loop = asyncio.get_running_loop()
        if self._settings.demo_model.use == "always":
            self._primary_ok = False
            return BackendHealth(False, False, self._primary.model, detail="demo model forced")
        fresh = loop.time() - self._checked_at < self._recheck_s
        if self._primary_health is not None and fresh and not force:
            return self._primary_health
        health = await self._primary.health()
        was_ok, self._primary_ok = self._primary_ok, health.reachable and health.model_present
        if was_ok != self._primary_ok or self._primary_health is None:
            log.info(
                "model server %s: %s",
                "ready" if self._primary_ok else "not usable",
                health.detail or health.model,
            )
        self._primary_health, self._checked_at = health, loop.time()
        return health

    async def _ensure_local(self) -> ChatBackend:
        async with self._lock:
            if self._local is not None and self._launcher.running:
                return self._local
            if self._local is not None:
                await self._local.aclose()
                self._local = None
            self._local = await self._launcher.start()
            log.warning(
                "answering with %s: small and weak, for demos only; install a real model"
                " (`ollama pull %s`) for useful answers",
                self._local.model,
                self._settings.model,
            )
            return self._local

    async def aclose(self) -> None:
        await self._primary.aclose()
        if self._local is not None:
            await self._local.aclose()
            self._local = None
        await self._launcher.stop()
