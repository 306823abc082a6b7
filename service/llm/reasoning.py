"""Split R1's raw output into reasoning and answer while it streams.

DeepSeek-R1 writes ``<think>reasoning</think>answer``. Servers without a separate
thinking channel send that text as is, cut anywhere (even inside a tag), and some chat
templates pre-fill ``<think>`` so the output starts inside the block with no opening tag.

Rules of :class:`ThinkSplitter`:

* ``<think>`` opens a reasoning block, ``</think>`` closes it; several blocks may follow each
  other, an empty block yields nothing. Tags are exact and case-sensitive; inside a block a
  ``<think>`` is plain reasoning text, outside one a ``</think>`` is plain answer text (once
  the start has been decided, see below).
* A tag cut across pieces is held back until it is complete or proven not to be a tag: no
  delta ever carries part of a tag.
* Whitespace at the start of the answer and right after every tag is dropped.
* The start: with ``prefilled=True`` the text begins inside a block (a leading ``<think>`` is
  tolerated); with ``prefilled=False`` it begins as answer. With ``prefilled=None`` (the
  default) the splitter cannot know, so it holds everything back until the first tag decides:
  a ``</think>`` first means the text before it was reasoning (pre-filled template); a
  ``<think>`` first means the text before it was answer (usually nothing); no tag at all by
  the end means it was all answer. Output that opens with ``<think>`` streams at once.
* :meth:`ThinkSplitter.finish` flushes what is held; :attr:`ThinkSplitter.unclosed` then says
  whether the text ended inside a block (the reasoning never finished: no answer).

Decisions depend only on the text, never on how it was cut, so any chunking of a response
yields the same answer and reasoning as feeding it whole.
"""

from __future__ import annotations

from typing import Literal

from service.llm.base import ModelDelta

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

_Kind = Literal["answer", "reasoning"]
_State = Literal["undecided", "answer", "reasoning"]
_START: dict[bool | None, _State] = {None: "undecided", True: "reasoning", False: "answer"}


def _partial_tag_len(text: str, *tags: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of one of ``tags``."""
    best = 0
    for tag in tags:
        for n in range(min(len(tag) - 1, len(text)), best, -1):
            if text.endswith(tag[:n]):
                best = n
                break
    return best


class ThinkSplitter:
    """Streaming state machine: feed text pieces, get ``ModelDelta`` pieces back."""

    def __init__(self, *, prefilled: bool | None = None) -> None:
        self._state: _State = _START[prefilled]
        self._expect_open = prefilled is True  # a leading <think> is swallowed
        self._buf = ""
        self._skip_ws = True
        self._finished = False
        self.unclosed = False
        self.answer_chars = 0
        self.reasoning_chars = 0

    @property
    def in_reasoning(self) -> bool:
        """True while the text so far ends inside a reasoning block."""
        return self._state == "reasoning"

    def feed(self, text: str) -> list[ModelDelta]:
        """Take the next piece of raw output; return what can be told apart so far."""
        if self._finished:
            raise RuntimeError("ThinkSplitter.feed() after finish()")
        self._buf += text
        out: list[ModelDelta] = []
        while self._step(out):
            pass
        return out

    def finish(self) -> list[ModelDelta]:
        """End of stream: flush held text (a partial tag is just text) and set ``unclosed``."""
        if self._finished:
            return []
        out: list[ModelDelta] = []
        kind: _Kind = "reasoning" if self._state == "reasoning" else "answer"
        self._emit(out, kind, self._buf)
        self._buf = ""
        self.unclosed = self._state == "reasoning"
        self._finished = True
        return out

    def _step(self, out: list[ModelDelta]) -> bool:
        """Consume what can be decided; True when another step may make progress."""
        buf = self._buf
        if self._state == "undecided":
            close_at, open_at = buf.find(CLOSE_TAG), buf.find(OPEN_TAG)
            if close_at >= 0 and (open_at < 0 or close_at < open_at):
                self._emit(out, "reasoning", buf[:close_at])
                self._enter("answer", buf[close_at + len(CLOSE_TAG) :])
                return True
            if open_at >= 0:
                self._emit(out, "answer", buf[:open_at])
                self._enter("reasoning", buf[open_at + len(OPEN_TAG) :])
                return True
            return False  # hold everything until a tag or the end decides
        if self._expect_open:
            head = buf.lstrip()
            if head.startswith(OPEN_TAG):
                self._expect_open = False
                self._enter("reasoning", head[len(OPEN_TAG) :])
                return True
            if OPEN_TAG.startswith(head):
                return False  # could still become the tolerated leading <think>
            self._expect_open = False
        kind: _Kind
        next_state: _State
        if self._state == "reasoning":
            kind, tag, next_state = "reasoning", CLOSE_TAG, "answer"
        else:
            kind, tag, next_state = "answer", OPEN_TAG, "reasoning"
        at = buf.find(tag)
        if at >= 0:
            self._emit(out, kind, buf[:at])
            self._enter(next_state, buf[at + len(tag) :])
            return True
        keep = _partial_tag_len(buf, tag)
        self._emit(out, kind, buf[: len(buf) - keep])
        self._buf = buf[len(buf) - keep :]
        return False

    def _enter(self, state: _State, rest: str) -> None:
        self._state = state
        self._buf = rest
        self._skip_ws = True

    def _emit(self, out: list[ModelDelta], kind: _Kind, text: str) -> None:
        if self._skip_ws:
            text = text.lstrip()
            if not text:
                return
            self._skip_ws = False
        if not text:
            return
        if kind == "answer":
            self.answer_chars += len(text)
        else:
            self.reasoning_chars += len(text)
        if out and out[-1].kind == kind:
            out[-1] = ModelDelta(kind, out[-1].text + text)
        else:
            out.append(ModelDelta(kind, text))
