"""The prompt sent to the R1 distill, following DeepSeek-R1's usage notes.

* No system prompt: every instruction goes in the (last) user turn.
* Numbered sources, each headed ``[n] <document title>, p. <page>``, then its text.
* Answer only from the sources, cite them as ``[n]``, and say plainly when they do not
  contain the answer.
* Multi-turn: earlier turns are sent as plain text; an earlier assistant turn is sent
  as its answer only, whatever reasoning (``<think>`` blocks) a client echoes back is
  removed. Only the last user turn carries sources.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ingest.index import META_PAGE_END, META_PAGE_START, META_SOURCE, META_TITLE, Hit
from service.llm.base import ChatMessage
from service.llm.reasoning import ThinkSplitter

INSTRUCTIONS = (
    "Answer the question using only the numbered sources below. After each statement,"
    " cite the source it comes from as [n] (for example [1] or [2][3]). If the sources do"
    " not contain the answer, say plainly that the documents provided do not answer the"
    " question; do not guess and do not use outside knowledge."
)
NO_SOURCES = "(no sources)"


def source_heading(n: int, hit: Hit) -> str:
    """``[n] <document title>, p. <page>`` (``pp. a-b`` for a span, no page when unknown)."""
    return f"[{n}] {source_label(hit)}"


def source_label(hit: Hit) -> str:
    title = document_title(hit)
    pages = page_label(hit)
    return f"{title}, {pages}" if pages else title


def document_title(hit: Hit) -> str:
    meta = hit.metadata
    return str(meta.get(META_TITLE) or meta.get(META_SOURCE) or hit.id)


def page_label(hit: Hit) -> str:
    start, end = hit.metadata.get(META_PAGE_START), hit.metadata.get(META_PAGE_END)
    if start is None:
        return ""
    if end is None or end == start:
        return f"p. {start}"
    return f"pp. {start}-{end}"


def format_sources(hits: Sequence[Hit]) -> str:
    """The numbered source block, in the order of ``hits`` (best first)."""
    if not hits:
        return NO_SOURCES
    blocks = [f"{source_heading(n, hit)}\n{hit.text.strip()}" for n, hit in enumerate(hits, 1)]
    return "\n\n".join(blocks)


def question_turn(question: str, hits: Sequence[Hit], extra_instructions: str = "") -> str:
    """The user turn that carries the instructions, the sources and the question."""
    parts = [INSTRUCTIONS]
    if extra_instructions.strip():
        parts.append(f"Additional instructions: {extra_instructions.strip()}")
    parts.append(f"Sources:\n\n{format_sources(hits)}")
    parts.append(f"Question: {question.strip()}")
    return "\n\n".join(parts)


def strip_reasoning(text: str) -> str:
    """The answer part of an assistant turn: ``<think>`` blocks (closed or not) removed."""
    splitter = ThinkSplitter()
    deltas = splitter.feed(text) + splitter.finish()
    return "".join(d.text for d in deltas if d.kind == "answer").strip()


def build_messages(
    question: str,
    hits: Sequence[Hit],
    history: Sequence[ChatMessage] = (),
    extra_instructions: str = "",
) -> list[ChatMessage]:
    """Messages for the model: earlier turns (reasoning removed), then the sourced question."""
    messages = [
        ChatMessage(m.role, strip_reasoning(m.content) if m.role == "assistant" else m.content)
        for m in history
    ]
    messages.append(ChatMessage("user", question_turn(question, hits, extra_instructions)))
    return messages


_CITE_RE = re.compile(r"\[(\d{1,3}(?:\s*(?:,|-|–)\s*\d{1,3})*)\]")


def cited_numbers(answer: str, count: int) -> list[int]:
    """Source numbers the answer cites (``[2]``, ``[1, 3]``, ``[2-4]``) within 1..count."""
    found: set[int] = set()
    for match in _CITE_RE.finditer(answer):
        for part in re.split(r"\s*,\s*", match.group(1)):
            bounds = [int(x) for x in re.split(r"\s*[-–]\s*", part)]
            low, high = bounds[0], bounds[-1]
            if high - low > count:  # "[1999-2024]" is a year range, not citations
                continue
            found.update(range(low, high + 1))
    return sorted(n for n in found if 1 <= n <= count)
