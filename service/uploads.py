"""Uploads from the web chat: store the file in the collection's upload area, then index it.

Files land under ``<data dir>/uploads/<collection>/`` with a sanitised name
(``service.auth.hardening.upload_path``): written to a hidden temporary file in that folder
(never indexed: discovery skips dot-files), then ``os.replace``-d into place, so a
half-written upload is never seen and a planted symlink is replaced, not written
through. Indexing goes through ``ingest.pipeline.IngestPipeline`` (crash-safe and
incremental: the same file uploaded again is "unchanged"), one run at a time, in a
worker thread. The parser pool outlives a run so that only the first upload pays for
starting the parser workers; it closes when idle for a while and at shutdown.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from ingest.errors import FileRejected, IngestError
from ingest.report import FileResult
from ingest.settings import IngestSettings, ParseSettings, validate_collection_name
from service.auth import audit
from service.errors import BadRequest

if TYPE_CHECKING:
    from ingest.embed import Embedder
    from ingest.pipeline import IngestPipeline, ParserLike

log = logging.getLogger(__name__)

COPY_BLOCK = 1 << 20
PARSER_IDLE_S = 600.0


@dataclass(frozen=True, slots=True)
class UploadResult:
    """What happened to one uploaded file."""

    filename: str  # the name it was stored under
    status: str  # indexed | unchanged | failed
    document_id: str | None = None
    code: str | None = None  # failure reason, e.g. unsupported_type, too_large
    message: str | None = None
    chunks: int = 0
    pages: int | None = None
    bytes: int = 0


class _Pool(Protocol):
    def parse_many(
        self, items: Iterable[tuple[Any, Path]], *, stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[Any, Any]]: ...

    def close(self) -> None: ...


class SharedParser:
    """One parser pool reused across pipeline runs; the pipeline's ``close`` keeps it."""

    def __init__(self, factory: Callable[[ParseSettings, int], _Pool], idle_s: float) -> None:
        self._factory = factory
        self._idle_s = idle_s
        self._pool: _Pool | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __call__(self, settings: ParseSettings, workers: int) -> ParserLike:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._pool is None:
                self._pool = self._factory(settings, workers)
            return _Lease(self._pool, self._released)

    def _released(self) -> None:
        with self._lock:
            if self._pool is not None and self._timer is None:
                self._timer = threading.Timer(self._idle_s, self.close)
                self._timer.daemon = True
                self._timer.start()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if pool is not None:
            pool.close()


class _Lease:
    def __init__(self, pool: _Pool, on_close: Callable[[], None]) -> None:
        self._pool = pool
        self._on_close = on_close

    def parse_many(
        self, items: Iterable[tuple[Any, Path]], *, stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[Any, Any]]:
        return self._pool.parse_many(items, stop=stop)

    def close(self) -> None:
        self._on_close()


def _default_pool(settings: ParseSettings, workers: int) -> _Pool:
    from ingest.isolation import ParserPool

    return ParserPool(settings, workers=workers)


class UploadService:
    """Saves uploads into a collection's area and indexes them, one run at a time."""

    def __init__(
        self,
        ingest_settings: IngestSettings,
        *,
        max_bytes: int,
        pipeline_factory: Callable[[IngestSettings, Any], IngestPipeline] | None = None,
        pool_factory: Callable[[ParseSettings, int], _Pool] = _default_pool,
        embedder: Embedder | None = None,
    ) -> None:
        """``embedder``: the process's shared encoder (default: one of its own)."""
        self.settings = ingest_settings
        self._embedder = embedder
        self.max_bytes = max_bytes
        self.upload_root = ingest_settings.data_dir / "uploads"
        self._parser = SharedParser(pool_factory, PARSER_IDLE_S)
        self._pipeline_factory = pipeline_factory or self._default_pipeline
        self._pipeline: IngestPipeline | None = None
        self._run_lock = threading.Lock()

    # -- saving ---------------------------------------------------------------------------
    def target(self, collection: str, filename: str) -> Path:
        """The stored path for ``filename`` in ``collection``; ``BadRequest`` if unusable."""
        from service.auth.hardening import upload_path

        try:
            validate_collection_name(collection)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        area = self.upload_root / collection
        area.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            return upload_path(self.upload_root, collection, filename)
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_filename") from None

    def save(self, source: BinaryIO, target: Path) -> int:
        """Copy ``source`` to ``target`` atomically; ``FileRejected`` (too_large) over the cap."""
        from ingest.errors import TooLarge

        tmp = target.with_name(f".upload-{os.getpid()}-{threading.get_ident()}-{target.name}")
        size = 0
        try:
            with open(tmp, "xb") as out:
                while block := source.read(COPY_BLOCK):
                    size += len(block)
                    if size > self.max_bytes:
                        raise TooLarge(
                            f"larger than the {self.max_bytes // (1024 * 1024)} MiB limit"
                        )
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return size

    # -- indexing -------------------------------------------------------------------------
    def index(self, collection: str, paths: list[Path]) -> dict[Path, UploadResult]:
        """Index stored uploads (blocking; serialised). One result per path."""
        with self._run_lock:
            pipeline = self._get_pipeline()
            try:
                report = pipeline.run(paths, collection)
            except IngestError as exc:  # the index itself refused (embedder mismatch, ...)
                return {p: _failed(p, exc.code, exc.message) for p in paths}
        by_name = {Path(r.root) / r.path: r for r in report.files}
        out: dict[Path, UploadResult] = {}
        for path in paths:
            result = by_name.get(path.resolve())
            out[path] = (
                _result(path, result) if result else _failed(path, "parse_error", "not indexed")
            )
        audit.note_documents([collection], [r.document_id for r in out.values() if r.document_id])
        return out

    def _get_pipeline(self) -> IngestPipeline:
        if self._pipeline is None:
            self._pipeline = self._pipeline_factory(self.settings, self._parser)
        return self._pipeline

    def _default_pipeline(self, settings: IngestSettings, parser_factory: Any) -> IngestPipeline:
        from ingest.pipeline import IngestPipeline

        return IngestPipeline(settings, parser_factory=parser_factory, embedder=self._embedder)

    def close(self) -> None:
        self._parser.close()
        if self._pipeline is not None:
            self._pipeline.close()
            self._pipeline = None


def _result(path: Path, result: FileResult) -> UploadResult:
    return UploadResult(
        filename=path.name,
        status=result.status if result.status != "removed" else "failed",
        document_id=result.document_id,
        code=result.reason if result.status == "failed" else None,
        message=result.message if result.status == "failed" else None,
        chunks=result.chunks,
        pages=result.pages,
        bytes=result.bytes,
    )


def _failed(path: Path, code: str, message: str) -> UploadResult:
    return UploadResult(filename=path.name, status="failed", code=code, message=message)


def rejected(filename: str, error: FileRejected | BadRequest) -> UploadResult:
    """A file refused before indexing (bad name, too large)."""
    code = error.code if isinstance(error, FileRejected) else error.detail.get("code", error.code)
    return UploadResult(filename=filename, status="failed", code=str(code), message=error.message)
