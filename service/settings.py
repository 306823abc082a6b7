"""Service settings (pydantic-settings, env prefix ``INHOUSE_``, nested with ``__``).

``ServiceSettings`` extends ``ingest.settings.IngestSettings``: the data dir, sources file,
Chroma URL, parse, chunk, embed, retrieval and rerank sections are declared there, once, and
reach the ingest code the service runs (uploads, the embedded scheduler) as this one object.
Read through :func:`get_settings` (``ingest.settings.load_settings``: an invalid value raises
``SettingsError`` naming its variable; the CLI exits 2 with it).

Contract env names: ``INHOUSE_DATA_DIR``, ``INHOUSE_MODEL``, ``OLLAMA_HOST`` (read like
Ollama's own tools), ``INHOUSE_AUTH``, ``INHOUSE_ADMIN_KEY``, ``INHOUSE_SOURCES``,
``INHOUSE_POLICY``, ``INHOUSE_OIDC__ISSUER`` (the rest: ``service.auth.oidc_settings``). Others are
nested, e.g.
``INHOUSE_TIMEOUTS__FIRST_TOKEN_S=60``, ``INHOUSE_REASONING_LOG__RETENTION_DAYS=30``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from ingest.settings import IngestSettings, load_settings
from service.auth.oidc_settings import OIDCSettings
from service.metrics import MetricsSettings


class TimeoutSettings(BaseModel):
    """Model-server timeouts (seconds)."""

    connect_s: float = Field(5.0, gt=0, description="Connecting to the model server.")
    first_token_s: float = Field(120.0, gt=0, description="Request sent -> first streamed token.")
    total_s: float = Field(600.0, gt=0, description="Whole generation.")


class ReasoningLogSettings(BaseModel):
    """Where R1's reasoning goes: its own JSON-lines sink, never the application log."""

    dir: Path | None = Field(None, description="Default: <data dir>/reasoning.")
    retention_days: int = Field(30, ge=1, description="Files older than this are purged.")


class LimitSettings(BaseModel):
    """Request limits."""

    question_chars: int = Field(4000, ge=1, description="Longest accepted question.")
    top_k_max: int = Field(50, ge=1, description="Largest top_k a caller may ask for.")
    top_k_default: int = Field(6, ge=1, description="Passages retrieved by default.")
    body_bytes: int = Field(1_000_000, ge=1024, description="Largest JSON request body.")
    upload_mb: float = Field(100.0, gt=0, description="Largest uploaded file (MiB).")
    concurrent_uploads_per_key: int = Field(
        2, ge=1, description="Uploads one key may have in flight at once (more: 429)."
    )
    concurrent_uploads: int = Field(
        4, ge=1, description="Uploads in flight at once, all keys together (more: 503)."
    )


MIN_ADMIN_KEY_CHARS = 32
DEFAULT_CONTEXT_TOKENS = 8192


class SecuritySettings(BaseModel):
    """HTTP hardening and accountability (env ``INHOUSE_SECURITY__*``)."""

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed cross-origin (comma-separated); empty = CORS closed.",
    )
    rate_limit: str = Field(
        "120/minute",
        description="Per-key request limit in `limits` notation, e.g. '60/minute;1000/day'"
        "; empty = unlimited. With PostgreSQL counted in the database (one limit across all"
        " replicas); with SQLite per process.",
    )
    auth_failure_limit: str = Field(
        "30/minute",
        description="Failed authentications allowed per client address (shared like rate_limit).",
    )
    audit_dir: Path | None = Field(None, description="Default: <data dir>/audit.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reverse-proxy addresses or CIDRs (comma-separated) whose X-Forwarded-For"
        " is believed; empty (default) = the header is ignored from everyone.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError("CORS '*' would expose every key-holder's browser; list origins")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        return [str(ipaddress.ip_network(item, strict=False)) for item in value]

    @field_validator("rate_limit", "auth_failure_limit")
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        from limits import parse_many

        if value.strip():
            parse_many(value)  # raises ValueError on bad notation
        return value.strip()


class OpenAISettings(BaseModel):
    """An OpenAI-compatible model server (vLLM, llama.cpp server, LM Studio, Ollama's /v1);
    used when ``backend`` is ``openai``. The model id is ``model`` (``INHOUSE_MODEL``)."""

    base_url: str = Field(
        "http://127.0.0.1:8080/v1",
        description="API base URL, usually ending in /v1 (default: llama.cpp server; not 8000,"
        " where Inhouse itself listens).",
    )
    api_key: SecretStr | None = Field(None, description="Bearer key, if the server wants one.")
    think_tags: Literal["auto", "prefilled", "answer_first"] = Field(
        "auto",
        description="Where raw <think> text is expected when the server sends no reasoning"
        " field: auto (R1; the answer waits for the first tag), prefilled (output starts"
        " inside <think>), answer_first (non-reasoning models: the answer streams at once).",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value


class DemoModelSettings(BaseModel):
    """The small local demo model (Gemma 3 270M through llama.cpp), served over the OpenAI
    protocol on loopback when the configured model server is unreachable or lacks the model."""

    use: Literal["auto", "never", "always"] = Field(
        "never",
        description="never (default; measured better, see README): without a model server,"
        " answers fail or fall back to the best passages; auto: the demo model answers"
        " whenever the configured server cannot; always: ignore the configured server.",
    )
    dir: Path | None = Field(None, description="GGUF folder; default <data dir>/models.")
    context_tokens: int = Field(4096, ge=512, description="llama.cpp context window (n_ctx).")
    max_tokens: int = Field(320, ge=16, description="Longest generated answer.")
    threads: int | None = Field(None, ge=1, description="CPU threads (default: llama.cpp's).")
    start_timeout_s: float = Field(120.0, gt=0, description="Assemble + load + first health.")


class GroundingSettings(BaseModel):
    """Extractive answers and the figure/quote check (env ``INHOUSE_GROUNDING__*``)."""

    strict: bool = Field(
        False,
        description="Replace a generated answer that states figures found in none of its"
        " sources by the extract, with a notice.",
    )
    attribute: bool = Field(
        True,
        description="Cite each uncited sentence of a generated answer by the passage that"
        " supports it best (marked as inferred), and drop citations that point to no passage.",
    )
    extract_sentences: int = Field(
        3, ge=1, le=10, description="Most sentences (or lines) quoted in an extract."
    )
    extract_chars: int = Field(
        700, ge=100, le=5000, description="Character budget of an extract (one unit at least)."
    )


class ServiceSettings(IngestSettings):
    """Everything the query service needs: the ingest settings and the service's own."""

    model_config = SettingsConfigDict(
        env_prefix="INHOUSE_", env_nested_delimiter="__", extra="ignore", populate_by_name=True
    )

    model: str = Field("deepseek-r1:8b", description="Model name on the model server.")
    ollama_host: str = Field(
        "http://127.0.0.1:11434",
        validation_alias=AliasChoices("OLLAMA_HOST", "INHOUSE_OLLAMA_HOST"),
        description="Ollama server, read from OLLAMA_HOST like Ollama's own tools.",
    )
    backend: Literal["ollama", "openai"] = Field("ollama", description="Model server protocol.")
    auth: str = Field(
        "keys",
        description="keys (API keys, the default), oidc (company sign-in, service.auth.oidc),"
        " keys,oidc (both: web users sign in, tools use keys), or disabled (everyone is"
        " admitted: local demos only).",
    )
    admin_key: SecretStr | None = Field(
        None,
        description="INHOUSE_ADMIN_KEY: an admin key installed (hashed) at start, at least"
        f" {MIN_ADMIN_KEY_CHARS} characters.",
    )
    oidc: OIDCSettings = Field(default_factory=OIDCSettings)
    policy: Path | None = Field(
        None, description="INHOUSE_POLICY: YAML mapping groups and users to collections and scopes."
    )
    embedded_worker: bool = Field(
        True,
        description="Run the sources' re-index schedules inside the service; false when a"
        " separate `inhouse worker` runs them.",
    )
    temperature: float = Field(0.6, ge=0, le=2, description="R1's recommended 0.5-0.7.")
    max_tokens: int | None = Field(None, ge=1, description="Cap on generated tokens.")
    context_tokens: int = Field(
        DEFAULT_CONTEXT_TOKENS,
        ge=1024,
        description="Context window asked of Ollama (options.num_ctx): the prompt's passages"
        " (up to ~4,800 tokens at top_k 6) and R1's reasoning and answer must fit; Ollama's"
        " own default (2,048-4,096 by version) cuts a longer prompt from its start.",
    )
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    reasoning_log: ReasoningLogSettings = Field(default_factory=ReasoningLogSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    demo_model: DemoModelSettings = Field(default_factory=DemoModelSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    grounding: GroundingSettings = Field(default_factory=GroundingSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @field_validator("ollama_host")
    @classmethod
    def _normalise_host(cls, value: str) -> str:
        """Accept Ollama's forms: ``host``, ``host:port``, ``http://host:port``."""
        value = value.strip().rstrip("/")
        if "://" not in value:
            value = "http://" + value
        scheme, rest = value.split("://", 1)
        if ":" not in rest.split("/", 1)[0]:
            value = f"{scheme}://{rest.split('/', 1)[0]}:11434"
        return value

    @field_validator("policy", mode="before")
    @classmethod
    def _no_empty_path(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("auth")
    @classmethod
    def _auth_modes(cls, value: str) -> str:
        """``keys``, ``oidc``, ``keys,oidc`` (also ``oidc+keys``, any order) or ``disabled``."""
        modes = {m.strip().lower() for m in re.split(r"[,+\s]+", value) if m.strip()}
        if modes == {"disabled"}:
            return "disabled"
        if not modes or modes - {"keys", "oidc"}:
            raise ValueError("INHOUSE_AUTH must be keys, oidc, keys,oidc or disabled")
        return ",".join(m for m in ("keys", "oidc") if m in modes)

    @property
    def auth_modes(self) -> frozenset[str]:
        """The sign-in methods on: ``{"keys"}``, ``{"oidc"}``, both, or empty (disabled)."""
        return frozenset() if self.auth == "disabled" else frozenset(self.auth.split(","))

    @field_validator("admin_key")
    @classmethod
    def _strong_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value().strip()
        if len(secret) < MIN_ADMIN_KEY_CHARS or any(c.isspace() for c in secret):
            raise ValueError(
                f"INHOUSE_ADMIN_KEY must be at least {MIN_ADMIN_KEY_CHARS} characters without"
                " spaces; create one with `inhouse keys create --name admin --scopes admin`"
            )
        return SecretStr(secret)

    @property
    def audit_dir(self) -> Path:
        return self.security.audit_dir or self.data_dir / "audit"

    @property
    def reasoning_dir(self) -> Path:
        return self.reasoning_log.dir or self.data_dir / "reasoning"


@lru_cache(maxsize=1)
def get_settings() -> ServiceSettings:
    """Settings read once from the environment (tests clear the cache or override)."""
    return load_settings(ServiceSettings)
