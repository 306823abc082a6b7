"""From what one model request produced to the ``QueryResult`` the caller gets: usage,
timings, the notice when no model answered, the extract, citations attributed after the fact
(``grounding.attribute``: uncited sentences get the passage that supports them, marks to no
passage are dropped) and the grounding check of the final text (in strict mode an answer
with unsupported figures is replaced by the extract).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from service.answer_types import PreparedQuery, QueryResult
from service.errors import ModelError
from service.grounding import Attributed, Grounding, attribute, check_answer, extract
from service.llm.base import ModelDone
from service.prompt import cited_numbers
from service.settings import GroundingSettings


@dataclass(slots=True)
class ModelRun:
    """What one model request produced so far."""

    answer: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    done: ModelDone | None = None
    model_started: float = 0.0
    first_delta: float | None = None
    first_answer: float | None = None
    output: bool = False  # anything (reasoning or answer) arrived


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 1)


def run_timings(prepared: PreparedQuery, run: ModelRun) -> dict[str, float]:
    """Milliseconds from arrival (retrieval, first token, answer) and of the model call."""
    now = time.perf_counter()
    measured = {
        "retrieval_ms": prepared.retrieval_ms,
        "first_token_ms": _ms(prepared.started, run.first_delta),
        "reasoning_ms": _ms(run.first_delta or run.model_started, run.first_answer),
        "first_answer_token_ms": _ms(prepared.started, run.first_answer),
        "model_ms": _ms(run.model_started, now),
        "total_ms": _ms(prepared.started, now),
    }
    return {name: value for name, value in measured.items() if value is not None}


def model_result(
    prepared: PreparedQuery, run: ModelRun, model: str, notice: ModelError | None = None
) -> QueryResult:
    """The model's answer; with ``notice`` (no model answered) the passages only."""
    answer = "" if notice else "".join(run.answer).strip()
    done = run.done
    usage = {
        "prompt_tokens": done.prompt_tokens if done else 0,
        "completion_tokens": done.completion_tokens if done else 0,
        "reasoning_chars": sum(len(t) for t in run.reasoning),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return QueryResult(
        request_id=prepared.request_id,
        answer=answer,
        citations=prepared.citations,
        cited=cited_numbers(answer, len(prepared.citations)),
        model=done.model if done else model,
        usage=usage,
        timings=run_timings(prepared, run),
        notice=failure_notice(notice) if notice else None,
        reasoning="".join(run.reasoning) if prepared.send_reasoning else None,
        mode="sources" if notice else "model",
    )


def extract_result(
    prepared: PreparedQuery,
    run: ModelRun,
    model: str,
    settings: GroundingSettings,
    notice: dict[str, str] | None,
    grounding: Grounding | None = None,
) -> QueryResult:
    """The extract as the answer (``mode="extract"``)."""
    started = time.perf_counter()
    quoted = extract(
        prepared.question,
        prepared.passages,
        max_quotes=settings.extract_sentences,
        max_chars=settings.extract_chars,
    )
    extract_ms = round((time.perf_counter() - started) * 1000, 2)
    base = model_result(prepared, run, model)
    if notice is None:
        notice = {
            "code": "extract",
            "message": "Extract as asked: sentences quoted from the documents, no model answer.",
        }
    return QueryResult(
        request_id=base.request_id,
        answer=quoted.text,
        citations=base.citations,
        cited=quoted.cited,
        model="",
        usage=base.usage,
        timings={**base.timings, "extract_ms": extract_ms},
        notice=notice,
        reasoning=base.reasoning,
        mode="extract",
        grounding=grounding,
    )


def checked_result(
    prepared: PreparedQuery, run: ModelRun, model: str, settings: GroundingSettings
) -> QueryResult:
    """The model's answer with its grounding; the extract instead in strict mode."""
    result = model_result(prepared, run, model)
    started = time.perf_counter()
    # each passage as the prompt showed it: under its heading, the document's title
    titles = {c.n: c.title for c in prepared.citations}
    passages = {p.n: f"{titles.get(p.n, '')}\n{p.text}" for p in prepared.passages}
    removed: list[int] = []
    attributed: list[Attributed] = []
    if settings.attribute:
        attribution = attribute(result.answer, passages)
        removed, attributed = attribution.removed, attribution.attributed
        cited = cited_numbers(attribution.text, len(prepared.citations))
        result = replace(result, answer=attribution.text, cited=cited)
    grounding = check_answer(result.answer, passages, prepared.question)
    # the check reads the final text; the marks removed from it are reported from the model's
    invalid = sorted({*grounding.invalid_citations, *removed})
    grounding = replace(grounding, invalid_citations=invalid, attributed=attributed)
    grounding_ms = round((time.perf_counter() - started) * 1000, 2)
    measured = {**result.timings, "grounding_ms": grounding_ms}
    if settings.strict and any(u.kind == "figure" for u in grounding.unsupported):
        notice = {
            "code": "grounding_failed",
            "message": f"The model's answer stated {_figures(grounding)} found in none of"
            " its sources; showing sentences quoted from the documents instead.",
        }
        replaced = extract_result(prepared, run, model, settings, notice, grounding)
        return replace(replaced, timings={**replaced.timings, **measured})
    return replace(result, grounding=grounding, timings=measured)


def failure_notice(exc: ModelError, extracted: bool = False) -> dict[str, str]:
    """The notice of an answer given without the model (``exc``: why it did not answer)."""
    shown = "sentences quoted from the documents" if extracted else "the retrieved passages"
    return {
        "code": exc.code,
        "message": f"No model answered ({exc.message}); showing {shown} instead.",
    }


def _figures(grounding: Grounding) -> str:
    figures = [u.text for u in grounding.unsupported if u.kind == "figure"]
    shown = ", ".join(figures[:3]) + (", ..." if len(figures) > 3 else "")
    return f"{len(figures)} figure(s) ({shown})"
