"""The web client's JSDoc types (web/js/types.js) against the API they describe.

Typedefs that mirror a response model are compared with the app's /openapi.json field by
field (name, type, null, optional). Stream frames have no OpenAPI schema: those typedefs
are compared with the frames a live service sends (a query stream with reasoning, follow-up
streams with and without strict grounding, and both streams failing), so a field or an SSE
event the server never sends fails here instead of reading `undefined` in the browser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.api_support import LiveService, build_index, make_retriever
from tests.service.ollama_server import OllamaTestServer, Reply, Script, start_server
from tests.web.jsdoc import SchemaCheck, Typedef, parse_typedefs, value_problems

TYPES = Path(__file__).resolve().parents[2] / "web" / "js" / "types.js"
QUESTION = "How many vacation days do new employees get?"
SUPPORTED = "New employees get 25 days of paid vacation per year [1]."
UNSUPPORTED = "New employees get 99 days of paid vacation per year [1]."


@pytest.fixture(scope="module")
def typedefs() -> dict[str, Typedef]:
    found = parse_typedefs(TYPES)
    assert len(found) > 20, "types.js was not parsed"
    return found


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from service.api.main import create_app
    from service.settings import ServiceSettings

    data_dir = tmp_path_factory.mktemp("openapi") / "data"
    app = create_app(
        ServiceSettings(data_dir=data_dir, ollama_host="http://127.0.0.1:9", auth="keys")
    )
    with TestClient(app) as client:
        schema: dict[str, Any] = client.get("/openapi.json").json()
    return schema


def test_typedefs_match_the_openapi_schemas(
    typedefs: dict[str, Typedef], openapi: dict[str, Any]
) -> None:
    untagged = [t.name for t in typedefs.values() if bool(t.component) == bool(t.stream)]
    assert untagged == [], "each typedef names one schema, or one stream"
    check = SchemaCheck(typedefs, openapi["components"]["schemas"])
    problems = [p for t in typedefs.values() if t.component for p in check.problems(t)]
    assert problems == []


def test_a_made_up_field_is_caught(typedefs: dict[str, Typedef], openapi: dict[str, Any]) -> None:
    """The check itself can fail: an invented field, a wrong type, a missed null."""
    import dataclasses

    from tests.web.jsdoc import JsType, Prop

    me = typedefs["Me"]
    check = SchemaCheck(typedefs, openapi["components"]["schemas"])
    invented = dataclasses.replace(me, props={**me.props, "all_collections": Prop(
        "all_collections", JsType.parse("boolean"), True)})  # fmt: skip
    assert check.problems(invented) == ["Me (MeResponse).all_collections: not in the API"]
    wrong = dataclasses.replace(me, props={**me.props, "writable": Prop(
        "writable", JsType.parse("string[]"), True)})  # fmt: skip
    assert check.problems(wrong) == ["Me (MeResponse).writable: the API says nullable=True"]


# -- stream frames ------------------------------------------------------------------------
def sse_frames(response: httpx.Response) -> list[tuple[str, Any]]:
    """(event name, JSON data) per frame; comments skipped; unnamed frames are 'message'."""
    data: list[str]
    frames: list[tuple[str, Any]] = []
    name, data = "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                raw = "\n".join(data)
                frames.append((name, raw if raw == "[DONE]" else json.loads(raw)))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    return frames


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[Any]]]:
    """Frames of live streams: {"query": [(event, data)...], "chat": [data...]}."""
    from service.api.deps import get_retriever
    from service.api.main import create_app
    from service.settings import ServiceSettings

    data_dir = tmp_path_factory.mktemp("streams") / "data"
    build_index(data_dir)
    ollama: OllamaTestServer = start_server(Script())
    settings = ServiceSettings(
        data_dir=data_dir,
        ollama_host=ollama.url,
        auth="disabled",  # the anonymous admin may read reasoning
        grounding={"strict": True},  # an unsupported figure makes the follow-up an extract
        demo_model={"use": "never"},
    )
    app = create_app(settings)
    retriever = make_retriever(data_dir)
    app.dependency_overrides[get_retriever] = lambda: retriever
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "25"}]
    chat = {"messages": [*history, {"role": "user", "content": "And new hires?"}], "stream": True}
    query = {"question": QUESTION, "stream": True, "include_reasoning": True}
    out: dict[str, list[Any]] = {"query": [], "chat": []}
    try:
        with LiveService(app) as live, httpx.Client(base_url=live.url, timeout=60) as client:

            def post(path: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
                with client.stream("POST", path, json=body) as response:
                    assert response.status_code == 200, response.read()
                    return sse_frames(response)

            ollama.script.push(Reply.answer(SUPPORTED, "The handbook says 25 days."))
            out["query"] += post("/v1/query", query)
            ollama.script.push(Reply.answer(SUPPORTED, "ok"), Reply.answer(UNSUPPORTED, "ok"))
            out["chat"] += [data for _, data in post("/v1/chat/completions", chat)]
            out["chat"] += [data for _, data in post("/v1/chat/completions", chat)]
            ollama.script.error_status = 500
            out["query"] += post("/v1/query", {**query, "fallback": "none"})
            failing = {**chat, "fallback": "none"}
            out["chat"] += [data for _, data in post("/v1/chat/completions", failing)]
    finally:
        ollama.stop()
    yield out


def observe(
    value: Any, name: str, typedefs: dict[str, Typedef], seen: dict[str, list[Any]]
) -> None:
    """Record ``value`` as an instance of typedef ``name`` and walk into nested stream types."""
    seen.setdefault(name, []).append(value)
    for prop in typedefs[name].props.values():
        alt = prop.type.alts[0]
        inner = alt.removesuffix("[]")
        if inner in typedefs and typedefs[inner].stream and isinstance(value, dict):
            items = value.get(prop.name)
            for item in (items or []) if alt.endswith("[]") else [items] if items else []:
                observe(item, inner, typedefs, seen)


def stream_problems(typedefs: dict[str, Typedef], seen: dict[str, list[Any]]) -> list[str]:
    """Each stream typedef's fields were all seen, with their types, when not optional."""
    out = []
    for typedef in typedefs.values():
        if not typedef.stream:
            continue
        instances = seen.get(typedef.name, [])
        if not instances:
            out.append(f"{typedef.name}: never sent")
        for name, prop in typedef.props.items():
            values = [i[name] for i in instances if name in i]
            if not values:
                out.append(f"{typedef.name}.{name}: never sent")
            if not prop.optional and len(values) < len(instances):
                out.append(f"{typedef.name}.{name}: missing from some frames (optional?)")
            out += [f"{typedef.name}.{name}: {p}" for v in values
                    for p in value_problems(prop.type, v, typedefs)]  # fmt: skip
    return out


def test_stream_frames_match_their_typedefs(
    typedefs: dict[str, Typedef], openapi: dict[str, Any], streams: dict[str, list[Any]]
) -> None:
    by_event = {event: t for t in typedefs.values() for event in t.events}
    sent = {event for event, _ in streams["query"]}
    assert sent == set(by_event), "the SSE events of /v1/query and the typedefs differ"
    seen: dict[str, list[Any]] = {}
    schemas = openapi["components"]["schemas"]
    for event, data in streams["query"]:
        typedef = by_event[event]
        if typedef.stream:
            observe(data, typedef.name, typedefs, seen)
            continue
        # events that carry (part of) a response model: nothing beyond it, nothing missing
        fields = schemas[typedef.component]["properties"]
        assert set(data) <= set(fields), (event, set(data) - set(fields))
        absent = [p for p in typedef.props.values() if not p.optional and p.name not in data]
        assert absent == [], event
    for frame in streams["chat"]:
        if frame != "[DONE]":
            observe(frame, "ChatStreamError" if "error" in frame else "ChatChunk", typedefs, seen)
    assert stream_problems(typedefs, seen) == []


# -- error codes ----------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
CLIENT_CODES = {"network_error"}  # the page's own: no answer came back at all
SERVER_CODE = re.compile(
    r"""\bcode\s*=\s*"([a-z_]+)"|"code":\s*"([a-z_]+)"|error_body\(\s*"([a-z_]+)"|"""
    r"""_json_error\(\s*\d+,\s*"([a-z_]+)\""""
)
TABLE = re.compile(r"const (?:ERRORS|NOTICE_TITLES|REASONS) = \{(.*?)\n\};", re.S)
COMPARED = re.compile(r"""\bcode\s*===?\s*"([a-z_]+)"|"([a-z_]+)"\s*===?\s*\w+\.code\b""")


def server_codes() -> set[str]:
    """Every error and notice code the service (and ingestion under it) can send."""
    import service.api.main  # noqa: F401  (loads every module that defines an error)
    from ingest.errors import IngestError
    from service.api.errors import HTTP_CODES
    from service.errors import ServiceError

    found = set(HTTP_CODES.values())
    todo: list[type] = [ServiceError, IngestError]
    while todo:
        cls = todo.pop()
        found.add(cls.code)  # type: ignore[attr-defined]
        todo += cls.__subclasses__()
    for path in [*(ROOT / "service").rglob("*.py"), *(ROOT / "ingest").rglob("*.py")]:
        found |= {c for groups in SERVER_CODE.findall(path.read_text()) for c in groups if c}
    return found


def client_codes() -> dict[str, set[str]]:
    """Codes the page has a message for, or compares an error's code with, per file."""
    out = {}
    for path in [ROOT / "web" / "app.js", *(ROOT / "web" / "js").glob("*.js")]:
        text = re.sub(r"typeof [\w?.]+", "", path.read_text())  # typeof x.code === "string"
        codes = {c for table in TABLE.findall(text) for c in re.findall(r"^\s*(\w+):", table, re.M)}
        codes |= {c for groups in COMPARED.findall(text) for c in groups if c}
        out[path.name] = codes
    return out


def test_the_page_expects_only_error_codes_the_service_sends() -> None:
    known = server_codes() | CLIENT_CODES
    assert {"model_unavailable", "no_documents", "payload_too_large", "grounding_failed",
            "invalid_filename", "too_large"} <= known  # fmt: skip
    codes = client_codes()
    assert {"model_unavailable", "no_documents", "rate_limited"} <= codes["turn.js"]
    unknown = {name: sorted(found - known) for name, found in codes.items() if found - known}
    assert unknown == {}
