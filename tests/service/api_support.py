"""Helpers for the query-service tests: one shared encoder, an index built in code, a
live service on a loopback port, and a small scripted backend for unit tests."""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from ingest.embed import Embedder
from ingest.index import (
    META_CHUNK_HASH,
    META_COLLECTION,
    META_DOC_HASH,
    META_DOCUMENT_ID,
    META_FILE_TYPE,
    META_PAGE_END,
    META_PAGE_START,
    META_POSITION,
    META_SOURCE,
    META_TITLE,
    ChromaIndex,
    StoredChunk,
    chunk_hash,
    chunk_id,
    document_id,
    make_chroma_client,
)
from ingest.manifest import Manifest
from ingest.settings import IngestSettings, RetrievalSettings
from service.llm.base import BackendHealth, ChatMessage, GenerationOptions, ModelDelta, ModelDone
from service.retrieval import Retriever
from service.settings import ServiceSettings

ROOT = "/docs"


@functools.cache
def shared_embedder() -> Embedder:
    """The real all-MiniLM-L6-v2 encoder, loaded once per test session."""
    embedder = Embedder()
    embedder.encode(["warm-up"])
    return embedder


@dataclass(frozen=True)
class Doc:
    """A document for the test index: its passages, one per page."""

    collection: str
    path: str
    title: str
    pages: Sequence[str]


HANDBOOK = Doc(
    "main",
    "hr/handbook.pdf",
    "Employee Handbook",
    [
        "New employees receive 25 days of paid vacation per year. Vacation requests go to"
        " the team lead at least two weeks in advance.",
        "Remote work is allowed up to three days a week with the manager's approval.",
        "The office opens at 8 am and closes at 7 pm on weekdays.",
    ],
)
TRAVEL = Doc(
    "main",
    "finance/travel.md",
    "Travel Expense Policy",
    [
        "Train travel is reimbursed in second class. Flights need approval from finance"
        " when the trip is shorter than 500 km.",
    ],
)
PAYROLL = Doc(
    "finance",
    "payroll.docx",
    "Payroll Calendar",
    ["Salaries are paid on the 25th of every month by bank transfer."],
)
DEFAULT_DOCS = (HANDBOOK, TRAVEL, PAYROLL)


def build_index(data_dir: Path, docs: Iterable[Doc] = DEFAULT_DOCS) -> None:
    """Write ``docs`` into Chroma (real embeddings) and the manifest, as ingestion would."""
    settings = IngestSettings(data_dir=data_dir)
    embedder = shared_embedder()
    index = ChromaIndex(make_chroma_client(settings), embedder.info)
    manifest = Manifest.open(settings)
    try:
        for doc in docs:
            doc_id = document_id(doc.collection, ROOT, doc.path)
            doc_hash = chunk_hash("\n".join(doc.pages))
            chunks = [
                StoredChunk(
                    id=chunk_id(doc_id, position, chunk_hash(text)),
                    text=text,
                    metadata={
                        META_COLLECTION: doc.collection,
                        META_DOCUMENT_ID: doc_id,
                        META_SOURCE: doc.path,
                        META_TITLE: doc.title,
                        META_FILE_TYPE: doc.path.rsplit(".", 1)[-1],
                        META_PAGE_START: position + 1,
                        META_PAGE_END: position + 1,
                        META_POSITION: position,
                        META_CHUNK_HASH: chunk_hash(text),
                        META_DOC_HASH: doc_hash,
                    },
                )
                for position, text in enumerate(doc.pages)
            ]
            manifest.begin_document(
                doc_id=doc_id,
                collection=doc.collection,
                root=ROOT,
                path=doc.path,
                size=100,
                mtime_ns=0,
                pending_hash=doc_hash,
                embedder=embedder.info.name,
            )
            index.upsert(doc.collection, chunks, embedder.encode(list(doc.pages)))
            manifest.finish_indexed(
                doc_id,
                content_hash=doc_hash,
                chunk_count=len(chunks),
                file_type=doc.path.rsplit(".", 1)[-1],
                title=doc.title,
                page_count=len(doc.pages),
            )
    finally:
        manifest.close()


def make_retriever(data_dir: Path, retrieval: RetrievalSettings | None = None) -> Retriever:
    settings = IngestSettings(data_dir=data_dir)
    return Retriever(
        make_chroma_client(settings),
        shared_embedder(),
        Manifest.open(settings),
        settings=retrieval,
    )


def service_settings(data_dir: Path, ollama_url: str = "http://127.0.0.1:9", **extra: Any) -> Any:
    """Settings for a test service: our data dir and model server, auth off, no demo model."""
    return ServiceSettings(
        data_dir=data_dir,
        ollama_host=ollama_url,
        auth="disabled",
        demo_model={"use": "never"},
        **extra,
    )


class LiveService:
    """A FastAPI app served by uvicorn on a free loopback port, in a background thread."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            proxy_headers=False,  # as `inhouse serve`: proxies are the app's business
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])),
            name=f"inhouse-test-service:{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveService:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


class ScriptedBackend:
    """A ChatBackend that plays a list of deltas (or raises) and records what it was sent."""

    def __init__(self, items: Sequence[ModelDelta | ModelDone | Exception] = ()) -> None:
        self.items = list(items) or [
            ModelDelta("reasoning", "secret musing"),
            ModelDelta("answer", "Twenty-five days [1]."),
            ModelDone(model="fake-r1", prompt_tokens=10, completion_tokens=5),
        ]
        self.requests: list[list[ChatMessage]] = []
        self.closed = False
        self.delay_s = 0.0

    @property
    def model(self) -> str:
        return "fake-r1"

    async def health(self) -> BackendHealth:
        return BackendHealth(reachable=True, model_present=True, model="fake-r1")

    async def stream_chat(
        self, messages: list[ChatMessage], options: GenerationOptions
    ) -> AsyncIterator[ModelDelta | ModelDone]:
        self.requests.append(list(messages))
        try:
            for item in self.items:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed = True

    async def aclose(self) -> None:
        pass


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body; comments are skipped."""
    events = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        if data:
            events.append((name, "\n".join(data)))
    return events
