"""Schemathesis against the generated OpenAPI schema, with a valid admin key.

Every operation gets a few generated requests against a real uvicorn on loopback (the
Ollama test server answers, a small index is built in code): no 5xx, and every response's
status, content type, headers and body match what the schema declares.

A negative case whose only fault is the type of an uploaded file (a number or text where the
schema says binary) is not sent: Schemathesis sends it as a file part whose content is that
value's text, which on the wire is a valid file, so accepting it is right.

Not checked: "every schema-valid request is accepted" (``positive_data_acceptance``):
validity also depends on limits set at run time (question length, ``top_k_max``) and on
content (a blank question) that a static schema does not state; those get 422
``invalid_request``, which the schema does declare.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.transport.serialization import Binary

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


def exercise(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    examples: int,
    *,
    seed: int | None = None,
    budget_s: float | None = None,
) -> int:
    """Run up to ``examples`` generated calls of one operation through Schemathesis' checks.

    Without ``seed`` the examples are the same every run (derandomised); with it they are
    drawn from that seed. ``budget_s`` stops calling the service once spent (the remaining
    examples are drawn but not sent). Returns how many calls were made.
    """
    calls = 0
    stop_at = None if budget_s is None else time.monotonic() + budget_s

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=seed is None,
        database=None,
    )
    def run(case: Any) -> None:
        nonlocal calls
        if stop_at is not None and time.monotonic() > stop_at:
            return
        if mode is GenerationMode.NEGATIVE and sends_text_as_files(case):
            return
        calls += 1
        case.call_and_validate(
            headers=headers, timeout=60, excluded_checks=[positive_data_acceptance]
        )

    if seed is not None:
        run = hypothesis.seed(seed)(run)
    try:
        run()
    except Unsatisfiable:  # no invalid input exists (e.g. no parameters, no body)
        assert mode is GenerationMode.NEGATIVE
    return calls


def sends_text_as_files(case: Any) -> bool:
    """Whether a negative case only retyped uploaded files: sent as file parts, they are files."""
    files = case.body.get("files") if isinstance(case.body, dict) else None
    scalars = (str, int, float, bool)
    return isinstance(files, list) and any(
        isinstance(f, scalars) and not isinstance(f, Binary) for f in files
    )


def conformance_failures(
    api_schema: Any,
    passes: tuple[tuple[GenerationMode, bool, int], ...],
    *,
    seed: int | None = None,
    budget_s: float | None = None,
) -> tuple[dict[str, str], int]:
    """Every failure by operation and pass (collected, not stopping at the first), and calls."""
    failures: dict[str, str] = {}
    calls = 0
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6
    for mode, with_key, examples in passes:
        headers = {"Authorization": f"Bearer {ADMIN['key']}"} if with_key else {}
        for operation in operations:
            try:
                calls += exercise(operation, mode, headers, examples, seed=seed, budget_s=budget_s)
            except (Exception, BaseExceptionGroup) as exc:  # collect all, then fail once
                label = f"{operation.label} [{mode.value}, key={with_key}]"
                failures[label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    return failures, calls


def test_api_conforms(api_schema: Any) -> None:
    """A few generated requests per operation and pass; every failure is reported."""
    failures, _ = conformance_failures(api_schema, PASSES)
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())


# The long run: new examples every run (seed printed on failure; set INHOUSE_SCHEMATHESIS_SEED
# to replay), up to 200/100/25 per operation and pass, at most BUDGET_S seconds of calls per
# operation and pass (~60-80 s in all on 2 busy cores).
BUDGET_S = 2.0
LONG_PASSES = (
    (GenerationMode.POSITIVE, True, 200),
    (GenerationMode.NEGATIVE, True, 100),
    (GenerationMode.POSITIVE, False, 25),
)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_api_conforms_with_a_real_budget(api_schema: Any) -> None:
    seed = int(os.environ.get("INHOUSE_SCHEMATHESIS_SEED") or random.randrange(2**32))
    failures, calls = conformance_failures(api_schema, LONG_PASSES, seed=seed, budget_s=BUDGET_S)
    operations = len(list(api_schema.get_all_operations()))
    assert calls >= 10 * operations, f"only {calls} calls for {operations} operations"
    assert not failures, f"INHOUSE_SCHEMATHESIS_SEED={seed}\n\n" + "\n\n".join(
        f"{label}\n{text}" for label, text in failures.items()
    )


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
