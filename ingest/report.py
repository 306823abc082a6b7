"""The ingest report: every file ends indexed, unchanged, removed or failed (with a reason)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["indexed", "unchanged", "removed", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("indexed", "unchanged", "removed", "failed")


@dataclass(slots=True)
class FileResult:
    """What happened to one file in one run."""

    path: str  # relative to its root
    root: str
    document_id: str
    status: Outcome
    reason: str | None = None  # error code when failed
    message: str | None = None
    file_type: str | None = None
    chunks: int = 0
    pages: int | None = None
    bytes: int = 0


@dataclass(slots=True)
class IngestReport:
    """One run over one collection."""

    collection: str
    roots: list[str]
    started_at: str
    finished_at: str | None = None
    elapsed_s: float = 0.0
    interrupted: bool = False
    files: list[FileResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {outcome: 0 for outcome in OUTCOMES}
        for result in self.files:
            out[result.status] += 1
        return out

    def failures_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for result in self.files:
            if result.status == "failed":
                key = result.reason or "parse_error"
                out[key] = out.get(key, 0) + 1
        return out

    @property
    def chunks_written(self) -> int:
        return sum(r.chunks for r in self.files if r.status == "indexed")

    @property
    def pages_indexed(self) -> int:
        return sum(r.pages or 0 for r in self.files if r.status == "indexed")

    @property
    def bytes_indexed(self) -> int:
        return sum(r.bytes for r in self.files if r.status == "indexed")

    @property
    def failed(self) -> bool:
        return any(r.status == "failed" for r in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "roots": self.roots,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "elapsed_s": round(self.elapsed_s, 3),
            "interrupted": self.interrupted,
            "counts": self.counts(),
            "failures_by_reason": self.failures_by_reason(),
            "chunks_written": self.chunks_written,
            "pages_indexed": self.pages_indexed,
            "bytes_indexed": self.bytes_indexed,
            "files": [asdict(r) for r in self.files],
        }
