"""The policy file: the issue's shape, grants adding up, and errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.auth.policy import PolicyError, load_policy, parse_policy
from service.auth.signin import open_signin
from service.settings import ServiceSettings

ISSUE_SHAPE = (
    "groups: {finance: {collections: {finance: [read]}}, auditors: {scopes: [reasoning:read]}}"
)


def test_the_issue_shape_parses() -> None:
    policy = parse_policy(ISSUE_SHAPE)
    finance = policy.caller("user:a", "A", "a", None, ["finance"])
    assert finance.collections == {"finance"} and not finance.may_read_reasoning
    auditor = policy.caller("user:b", "B", "b", None, ["auditors"])
    assert auditor.collections == frozenset() and auditor.may_read_reasoning
    nobody = policy.caller("user:c", "C", "c", None, ["unknown-group"])
    assert nobody.collections == frozenset() and nobody.scopes == {"query"}


def test_grants_add_up_and_upload_is_per_collection() -> None:
    policy = parse_policy(
        "everyone: {collections: {handbook: [read]}}\n"
        "groups:\n"
        "  hr: {collections: {hr: [read, upload]}}\n"
        "users:\n"
        "  alice@example.com: {collections: {legal: [read]}}\n"
    )
    alice = policy.caller("user:alice", "Alice", "alice", "alice@example.com", ["hr"])
    assert alice.collections == {"handbook", "hr", "legal"}
    assert alice.can_upload("hr") and not alice.can_upload("legal")
    assert alice.kind == "session"


def test_admin_scope_reads_everything() -> None:
    policy = parse_policy("groups: {it: {scopes: [admin]}}")
    admin = policy.caller("user:x", "X", "x", None, ["it"])
    assert admin.can_read("anything") and admin.can_upload("anything")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("groups:\n  finance:\n    collections: {finance: [write]}\n", 3, "unknown right 'write'"),
        ("groups:\n  a: {scopes: [reasonin:read]}\n", 2, "unknown scope 'reasonin:read'"),
        ("groups: {}\nteams: {}\n", 2, "unknown section 'teams'"),
        ("groups:\n  a:\n    colections: {x: [read]}\n", 3, "unknown field 'colections'"),
        ("groups:\n  a: {collections: {'../etc': [read]}}\n", 2, ""),
        ("groups:\n  a: [read]\n", 2, "must be a mapping"),
        ("groups:\n  a: {}\n  a: {}\n", 3, "appears twice"),
        ("groups: {a: {collections: {x: [read]}}\n  bad", 2, "not valid YAML"),
    ],
)
def test_errors_name_the_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    assert str(caught.value).startswith(f"policy.yaml:{line}:"), caught.value
    assert words in str(caught.value)


def test_the_service_refuses_to_start_with_a_bad_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("groups:\n  finance:\n    scopes: [root]\n")
    settings = ServiceSettings(
        data_dir=tmp_path, auth="oidc", policy=path,
        oidc={"issuer": "https://idp.example.com", "client_id": "inhouse"},
    )  # fmt: skip
    with pytest.raises(PolicyError, match=r"policy.yaml:3: unknown scope 'root'"):
        open_signin(settings)
    assert load_policy(None).groups == {}


@pytest.mark.parametrize(
    ("value", "normal"),
    [("keys", "keys"), ("oidc", "oidc"), ("oidc,keys", "keys,oidc"), ("keys+oidc", "keys,oidc"),
     ("disabled", "disabled")],
)  # fmt: skip
def test_auth_modes(value: str, normal: str) -> None:
    assert ServiceSettings(auth=value).auth == normal


@pytest.mark.parametrize("value", ["", "oauth", "keys,disabled"])
def test_bad_auth_modes_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="INHOUSE_AUTH"):
        ServiceSettings(auth=value)


def test_oidc_without_an_issuer_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="INHOUSE_OIDC__ISSUER"):
        open_signin(ServiceSettings(data_dir=tmp_path, auth="oidc"))


def test_several_providers_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from service.auth.oidc import SignInFailed

    monkeypatch.setenv("INHOUSE_AUTH", "oidc")
    monkeypatch.setenv("INHOUSE_OIDC__ISSUER", "https://login.example.com/realms/acme/")
    monkeypatch.setenv("INHOUSE_OIDC__CLIENT_ID", "inhouse")
    monkeypatch.setenv(
        "INHOUSE_OIDC__PROVIDERS",
        '{"google": {"issuer": "https://accounts.google.com", "client_id": "g",'
        ' "groups_claim": "", "label": "Google"}}',
    )
    settings = ServiceSettings(data_dir=tmp_path)
    providers = settings.oidc.all_providers()
    assert list(providers) == ["default", "google"]
    assert providers["default"].issuer == "https://login.example.com/realms/acme"
    assert providers["google"].groups_claim == "" and providers["default"].groups_claim == "groups"
    signin = open_signin(settings)
    assert signin is not None
    try:
        with pytest.raises(SignInFailed, match="choose one"):
            asyncio.run(signin.start(None, "/", "http://127.0.0.1:8000"))  # two: say which
        assert signin.provider("google").label == "Google"
    finally:
        signin.close()


def test_a_provider_named_default_next_to_the_top_level_one_is_refused() -> None:
    with pytest.raises(ValueError, match="bad provider name"):
        ServiceSettings(
            oidc={"issuer": "https://a.example", "client_id": "a",
                  "providers": {"default": {"issuer": "https://b.example", "client_id": "b"}}}
        )  # fmt: skip
