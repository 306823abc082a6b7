"""Request and response models of the HTTP API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from service.answer_types import Citation, QueryResult
from service.api.errors import ErrorResponse as ErrorResponse  # owned there, with the mapping
from service.grounding import Grounding


# -- /v1/query ---------------------------------------------------------------------------
class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(description="Plain text; empty or oversized -> 422.")
    collections: list[StrictStr] | None = Field(
        None, max_length=64, description="Collections to search; default: all you may read."
    )
    top_k: int | None = Field(None, ge=1, description="Passages to retrieve (default 6).")
    stream: bool = Field(False, description="Answer as Server-Sent Events.")
    include_reasoning: bool = Field(
        False, description="Also send the reasoning (only to keys with reasoning:read)."
    )
    fallback: Literal["extract", "sources", "none"] = Field(
        "extract",
        description="When no model can answer (none configured, server down, model missing,"
        " timeout) before it said anything: 'extract' (default) answers with sentences quoted"
        " from the passages, 'sources' returns the passages only, 'none' returns the error."
        " A notice says what happened.",
    )
    mode: Literal["model", "extract"] = Field(
        "model",
        description="'extract': answer with sentences quoted from the passages, without"
        " asking the model.",
    )


class CitationModel(BaseModel):
    n: int = Field(description="The number the answer cites as [n].")
    document_id: str
    source: str = Field(description="Path of the document relative to its scanned folder.")
    title: str
    page: int | None
    page_end: int | None
    snippet: str = Field(description="The passage text shown to the model.")
    score: float = Field(
        description="Relevance, higher is better: the fused hybrid score (0-1) by default,"
        " cosine similarity with INHOUSE_RETRIEVAL__MODE=dense."
    )
    collection: str
    chunk_id: str

    @classmethod
    def of(cls, citation: Citation) -> CitationModel:
        return cls(
            n=citation.n,
            document_id=citation.document_id,
            source=citation.source,
            title=citation.title,
            page=citation.page,
            page_end=citation.page_end,
            snippet=citation.snippet,
            score=citation.score,
            collection=citation.collection,
            chunk_id=citation.chunk_id,
        )


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    reasoning_chars: int = 0


class Notice(BaseModel):
    code: str
    message: str


class UnsupportedSpan(BaseModel):
    text: str = Field(description="The figure or quoted string as the answer states it.")
    span: tuple[int, int] = Field(description="[start, end) character offsets in the answer.")
    kind: Literal["figure", "quote"]


class AttributedMark(BaseModel):
    n: int = Field(description="The source the service matched the sentence to.")
    span: tuple[int, int] = Field(
        description="[start, end) of the inserted [n] mark in the answer."
    )
    sentence: tuple[int, int] = Field(
        description="[start, end) of the sentence it cites, mark included."
    )
    score: float = Field(
        description="Share of the sentence's words and figures found in source n (0-1)."
    )


class GroundingModel(BaseModel):
    """The check of a generated answer against the passages it cites."""

    checked: int = Field(description="Figures and quoted strings looked up.")
    unsupported: list[UnsupportedSpan] = Field(
        description="Those found in none of the cited passages (nor the question)."
    )
    invalid_citations: list[int] = Field(
        description="[n] the model cited that point to no passage (removed from the answer"
        " unless INHOUSE_GROUNDING__ATTRIBUTE=false)."
    )
    attributed: list[AttributedMark] = Field(
        description="[n] marks the service inserted, not the model: sentences that cited"
        " nothing, matched to the passage that shares most of their words and figures.",
    )

    @classmethod
    def of(cls, grounding: Grounding) -> GroundingModel:
        return cls(
            checked=grounding.checked,
            unsupported=[
                UnsupportedSpan(text=u.text, span=u.span, kind=u.kind)
                for u in grounding.unsupported
            ],
            invalid_citations=grounding.invalid_citations,
            attributed=[
                AttributedMark(n=a.n, span=a.span, sentence=a.sentence, score=a.score)
                for a in grounding.attributed
            ],
        )


ModeField = Field(
    description="How the answer was made: 'model' (generated), 'extract' (sentences quoted"
    " verbatim from the passages, no model), 'sources' (passages only, empty answer)."
)
GroundingField = Field(
    None, description="Figure and quote check of a generated answer (null for extracts)."
)


class QueryResponse(BaseModel):
    request_id: str
    answer: str = Field(description="The answer only, never the reasoning.")
    citations: list[CitationModel]
    cited: list[int] = Field(description="The [n] marks the answer actually uses.")
    model: str
    usage: Usage
    timings: dict[str, float]
    notice: Notice | None = Field(
        None, description="Set when the answer is not the model's (extract or sources)."
    )
    reasoning: str | None = Field(
        None, description="Present only when asked for and the key has reasoning:read."
    )
    mode: Literal["model", "extract", "sources"] = ModeField
    grounding: GroundingModel | None = GroundingField

    @classmethod
    def of(cls, result: QueryResult) -> QueryResponse:
        return cls(
            request_id=result.request_id,
            answer=result.answer,
            citations=[CitationModel.of(c) for c in result.citations],
            cited=result.cited,
            model=result.model,
            usage=Usage(**result.usage),
            timings=result.timings,
            notice=Notice(**result.notice) if result.notice else None,
            reasoning=result.reasoning,
            mode=result.mode,
            grounding=GroundingModel.of(result.grounding) if result.grounding else None,
        )


# -- /v1/chat/completions (OpenAI-compatible) -------------------------------------------
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat request; sampling fields are accepted and ignored (R1 settings apply)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, description="Accepted; the service's model answers.")
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    collections: list[StrictStr] | None = Field(
        None, max_length=64, description="Inhouse extension: collections to search."
    )
    top_k: int | None = Field(None, ge=1, description="Inhouse extension: passages to use.")
    fallback: Literal["extract", "sources", "none"] = Field(
        "extract", description="Inhouse extension: as in /v1/query."
    )
    mode: Literal["model", "extract"] = Field(
        "model", description="Inhouse extension: 'extract' answers without the model."
    )


class ChatResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatResponseMessage
    finish_reason: str = "stop"


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage
    inhouse_request_id: str
    inhouse_sources: list[CitationModel] = Field(description="The numbered sources ([n]).")
    inhouse_mode: Literal["model", "extract", "sources"] = ModeField
    inhouse_notice: Notice | None = Field(
        None, description="Why `content` is not the model's answer (extract), if it is not."
    )
    inhouse_grounding: GroundingModel | None = GroundingField


# -- other routes --------------------------------------------------------------------------
class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessCheck(BaseModel):
    ok: bool
    detail: str | None = Field(None, description="Why, or what was found; admin keys only.")


class ReaderStatus(BaseModel):
    """An optional document reader (a system package) and what it adds."""

    available: bool
    version: str | None = None
    package: str = Field(description="The Debian package that provides it.")
    formats: list[str] = Field(default_factory=list, description="What it lets Inhouse read.")
    languages: list[str] | None = Field(None, description="OCR languages installed.")


class ReadinessResponse(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, ReadinessCheck]
    readers: dict[str, ReaderStatus] | None = Field(
        None,
        description="Optional readers (tesseract, libreoffice) with versions; informative, not"
        " a check; shown to admin keys only.",
    )


class CollectionModel(BaseModel):
    name: str
    documents: int = Field(description="Indexed documents (what a question can find).")
    chunks: int
    failed: int = Field(description="Documents that could not be indexed.")
    pending: int
    embedder: str | None
    last_indexed_at: str | None


class CollectionsResponse(BaseModel):
    collections: list[CollectionModel]


class ReasoningRecordResponse(BaseModel):
    request_id: str
    time: str
    caller_id: str
    caller_name: str = ""
    collections: list[str]
    question: str
    model: str
    reasoning: str
    status: str
    usage: dict[str, int]
    durations_ms: dict[str, float]
