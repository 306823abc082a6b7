"""Build the configured model backend and its default generation options from settings."""

from __future__ import annotations

from service.errors import ModelUnavailable
from service.llm.base import ChatBackend, GenerationOptions
from service.settings import ServiceSettings


def build_backend(settings: ServiceSettings) -> ChatBackend:
    """The backend named by ``settings.backend``, falling back to the local demo model when
    ``demo_model.use`` allows it; the caller owns it and must ``aclose()`` it."""
    primary = _configured_backend(settings)
    if settings.demo_model.use == "never":
        return primary
    from service.llm.demo_fallback import DemoFallbackBackend

    return DemoFallbackBackend(primary, settings)


def _configured_backend(settings: ServiceSettings) -> ChatBackend:
    if settings.backend == "ollama":
        from service.llm.ollama import OllamaBackend

        return OllamaBackend.from_settings(settings)
    if settings.backend == "openai":
        from service.llm.openai_compat import OpenAIBackend

        return OpenAIBackend.from_settings(settings)
    raise ModelUnavailable(
        f"model backend {settings.backend!r} is not implemented yet; set INHOUSE_BACKEND=ollama",
        backend=settings.backend,
    )


def generation_options(settings: ServiceSettings) -> GenerationOptions:
    """Per-request options from settings (R1: temperature 0.5-0.7, no system prompt)."""
    return GenerationOptions(temperature=settings.temperature, max_tokens=settings.max_tokens)
