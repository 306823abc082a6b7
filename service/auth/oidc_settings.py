"""OpenID Connect settings (env ``INHOUSE_OIDC__*``): one provider is the simple case.

One provider::

    INHOUSE_AUTH=oidc            # or keys,oidc: web users sign in, tools keep their keys
    INHOUSE_OIDC__ISSUER=https://login.microsoftonline.com/<tenant>/v2.0
    INHOUSE_OIDC__CLIENT_ID=...
    INHOUSE_OIDC__CLIENT_SECRET=...
    INHOUSE_OIDC__REDIRECT_BASE_URL=https://inhouse.example.com
    INHOUSE_POLICY=/etc/inhouse/policy.yaml

Several providers: ``INHOUSE_OIDC__PROVIDERS`` as JSON, ``{"google": {"issuer": ...,
"client_id": ..., "client_secret": ..., "groups_claim": ""}}``; each entry takes the
provider fields below, and the top-level provider (when ``ISSUER`` is set) is ``default``.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
DEFAULT_PROVIDER = "default"
MAX_GROUPS_REFRESH_S = 900  # the promise: removal from a group bites within 15 min


class ProviderSettings(BaseModel):
    """One OpenID provider (an app registration / OAuth client at the provider)."""

    issuer: str | None = Field(
        None, description="Issuer URL; discovery reads <issuer>/.well-known/openid-configuration."
    )
    client_id: str = Field("", description="The client (application) id at the provider.")
    client_secret: SecretStr | None = Field(None, description="The client secret.")
    label: str = Field("", description="Button text on the sign-in page (default: the host).")
    scopes: str = Field("openid profile email", description="Requested scopes (space-separated).")
    groups_claim: str = Field(
        "groups",
        description="Claim holding the user's groups (ID token or userinfo); empty = the"
        " provider sends no groups and access comes from the policy's users only.",
    )
    subject_claim: str = Field("sub", description="Claim that identifies the user.")
    name_claim: str = Field("name", description="Claim with the display name.")
    email_claim: str = Field("email", description="Claim with the e-mail address.")

    @field_validator("issuer")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("issuer must be an http(s) URL")
        return value

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: str) -> str:
        parts = value.replace(",", " ").split()
        if "openid" not in parts:
            parts.insert(0, "openid")
        return " ".join(dict.fromkeys(parts))

    @property
    def configured(self) -> bool:
        return self.issuer is not None


class OIDCSettings(ProviderSettings):
    """OpenID Connect sign-in and the sessions it opens."""

    providers: dict[str, ProviderSettings] = Field(
        default_factory=dict, description="More providers by name (JSON); see the module doc."
    )
    redirect_base_url: str | None = Field(
        None,
        description="Public URL of this service (https://inhouse.example.com); the redirect"
        " URI is <base>/auth/callback. Default: the URL the browser used.",
    )
    session_idle_minutes: float = Field(60, gt=0, description="Sign-out after this idle time.")
    session_absolute_hours: float = Field(12, gt=0, description="Longest session, however busy.")
    groups_refresh_s: int = Field(
        300,
        ge=10,
        le=MAX_GROUPS_REFRESH_S,
        description="How often a live session re-reads the user's groups (at most 900 s).",
    )
    http_timeout_s: float = Field(10.0, gt=0, description="Calls to the provider.")

    @field_validator("redirect_base_url")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("redirect_base_url must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _names(self) -> OIDCSettings:
        for name in self.providers:
            if not NAME_RE.match(name) or name == DEFAULT_PROVIDER and self.configured:
                raise ValueError(f"bad provider name {name!r}: lower-case letters, digits, _ -")
        return self

    def all_providers(self) -> dict[str, ProviderSettings]:
        """Configured providers by name, the top-level one as ``default``."""
        out: dict[str, ProviderSettings] = {}
        if self.configured:
            fields = {k: getattr(self, k) for k in ProviderSettings.model_fields}
            out[DEFAULT_PROVIDER] = ProviderSettings(**fields)
        out.update({n: p for n, p in self.providers.items() if p.configured})
        return out

    def problems(self) -> list[str]:
        """What stops sign-in from working (checked at start when ``oidc`` is on)."""
        found = []
        providers = self.all_providers()
        if not providers:
            found.append("INHOUSE_AUTH includes oidc but INHOUSE_OIDC__ISSUER is not set")
        for name, provider in providers.items():
            if not provider.client_id:
                found.append(f"OIDC provider {name!r} has no client_id")
        return found
