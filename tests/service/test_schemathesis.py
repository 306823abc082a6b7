"""Schemathesis against the generated OpenAPI schema, with a valid admin key.

Every operation gets a few generated requests against a real uvicorn on loopback (the
Ollama test server answers, a small index is built in code): no 5xx, and every response's
status, content type, headers and body match what the schema declares.

Not checked: "every schema-valid request is accepted" (``positive_data_acceptance``):
validity also depends on limits set at run time (question length, ``top_k_max``) and on
content (a blank question) that a static schema does not state; those get 422
``invalid_request``, which the schema does declare.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from service.api.main import create_app
from service.auth.keys import KeyStore
from service.settings import ServiceSettings
from tests.service.api_support import LiveService, build_index
from tests.service.ollama_server import Script, start_server

ADMIN: dict[str, str] = {}
MAX_EXAMPLES = 6


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("schemathesis")
    data_dir = root / "data"
    build_index(data_dir)
    (root / "empty").mkdir()
    sources = root / "sources.yaml"
    sources.write_text(
        "sources:\n  - name: docs\n    paths: [empty]\n    collection: main\n"
        '    schedule: "0 3 * * *"\n    enabled: false\n'
    )
    ADMIN["key"] = KeyStore(data_dir).create("schemathesis", ["admin"], ["*"]).key
    ollama = start_server(Script.instant("It is in the sources [1].", "thinking"))
    app_settings = ServiceSettings(
        data_dir=data_dir,
        ollama_host=ollama.url,
        auth="keys",
        sources=sources,
        embedded_worker=False,
        demo_model={"use": "never"},
        security={"rate_limit": "100000/minute", "auth_failure_limit": "100000/minute"},
    )
    try:
        with LiveService(create_app(app_settings)) as live:
            yield schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    finally:
        ollama.stop()


# (generation mode, with the key?, examples per operation)
PASSES = (
    (GenerationMode.POSITIVE, True, MAX_EXAMPLES),  # valid requests, admin key
    (GenerationMode.NEGATIVE, True, 3),  # invalid requests: 4xx in the declared shape
    (GenerationMode.POSITIVE, False, 2),  # no key: a declared 401 (or a public route)
)


def exercise(operation: Any, mode: GenerationMode, headers: dict[str, str], examples: int) -> None:
    """Run ``examples`` generated calls of one operation through Schemathesis' checks."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        case.call_and_validate(
            headers=headers, timeout=60, excluded_checks=[positive_data_acceptance]
        )

    try:
        run()
    except Unsatisfiable:  # no invalid input exists (e.g. no parameters, no body)
        assert mode is GenerationMode.NEGATIVE


def test_api_conforms(api_schema: Any) -> None:
    """A few generated requests per operation and pass; every failure is reported."""
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6
    for mode, with_key, examples in PASSES:
        headers = {"Authorization": f"Bearer {ADMIN['key']}"} if with_key else {}
        for operation in operations:
            try:
                exercise(operation, mode, headers, examples)
            except (Exception, BaseExceptionGroup) as exc:  # collect all, then fail once
                label = f"{operation.label} [{mode.value}, key={with_key}]"
                failures[label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())


def test_schema_declares_the_key(api_schema: Any) -> None:
    raw = api_schema.raw_schema
    assert raw["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": raw["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    for path, operations in raw["paths"].items():
        for method, operation in operations.items():
            public = path in ("/healthz", "/readyz") or path.startswith("/auth/")  # sign-in
            assert bool(operation.get("security")) is not public, f"{method} {path}"
            if not public:
                assert {"401", "403", "429"} <= set(operation["responses"]), f"{method} {path}"
