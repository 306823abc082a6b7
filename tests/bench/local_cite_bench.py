"""Does a small local GGUF model cite its sources? Seven fixed questions, greedy decoding.

The two documents of ``tests/service/test_local_model_integration.py`` (a vacation policy and
a parking note), seven questions over them at top_k 1-2, the product prompt
(``service.prompt.build_messages``) and the demo model's token budget and stops. For each
answer: the ``[n]`` it cites and those that point to no passage (the grounding check). An
answer counts when it cites at least one passage and no missing one. Then the same answer
after ``service.grounding.attribute`` (what the service returns): does it hold a valid [n],
and does one point at the passage that answers the question? Prints figures; no asserts.
Needs llama-cpp-python (``make install-local-llm``).

Chat layouts: ``alpaca`` (what the demo server uses), ``alpaca-cued`` (the same with the
``### Response:`` cue llama-cpp-python's alpaca layout leaves out), ``gemma``, ``auto`` (the
GGUF's own template). ``--closing`` adds a last line asking for [n] citations.

    python -m tests.bench.local_cite_bench --layout alpaca
    python -m tests.bench.local_cite_bench --gguf SmolLM2-135M-Instruct.Q4_1.gguf --layout auto
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from ingest.index import META_SOURCE, META_TITLE, Hit
from service import prompt
from service.grounding import attribute, check_answer
from service.llm import local_model

VACATION = Hit(
    id="v",
    text="# Vacation policy\n\nEmployees receive 27 days of paid vacation per year. Requests"
    " go to the team lead two weeks in advance.",
    metadata={META_SOURCE: "vacation.md", META_TITLE: "Vacation policy"},
    score=0.9,
)
PARKING = Hit(
    id="p",
    text="The parking garage opens at 6:30 on weekdays.",
    metadata={META_SOURCE: "parking.txt"},
    score=0.5,
)
CASES = [  # (question, the passages in prompt order); the first-named document answers it
    ("How many days of paid vacation do employees get?", [VACATION, PARKING]),
    ("How many days of paid vacation do employees get?", [VACATION]),
    ("How many vacation days per year?", [VACATION, PARKING]),
    ("When does the parking garage open?", [PARKING, VACATION]),
    ("When does the parking garage open?", [PARKING]),
    ("Who do vacation requests go to?", [VACATION, PARKING]),
    ("How far in advance must vacation be requested?", [VACATION, PARKING]),
]
ANSWERING = {"vacation": VACATION, "parking": PARKING}
CLOSING = (
    "Answer the question in one or two sentences, from the sources only, and cite the"
    " source of each statement as [n]."
)


def _register_alpaca_cued() -> None:
    from llama_cpp.llama_chat_format import ChatFormatterResponse, register_chat_format

    @register_chat_format("alpaca-cued")
    def alpaca_cued(messages: list[dict[str, Any]], **_: Any) -> ChatFormatterResponse:
        roles = {"user": "### Instruction:", "assistant": "### Response:"}
        parts = [f"{roles[m['role']]}\n{m['content']}" for m in messages if m["role"] in roles]
        parts.append("### Response:\n")
        return ChatFormatterResponse(prompt="\n\n".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, help="model file (default: the demo model)")
    parser.add_argument("--layout", default="alpaca", help="alpaca, alpaca-cued, gemma, auto")
    parser.add_argument("--closing", action="store_true", help="end with a 'cite as [n]' line")
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()

    from llama_cpp import Llama

    _register_alpaca_cued()
    gguf = args.gguf or local_model.ensure_gguf(Path(tempfile.gettempdir()) / "inhouse-models")
    layout = {} if args.layout == "auto" else {"chat_format": args.layout}
    llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=2, verbose=False, **layout)
    valid = valid_after = right_after = 0
    started = time.monotonic()
    for question, hits in CASES:
        messages = [
            {"role": m.role, "content": m.content} for m in prompt.build_messages(question, hits)
        ]
        if args.closing:
            messages[-1]["content"] += f"\n\n{CLOSING}"
        out: Any = llm.create_chat_completion(
            messages, temperature=0.0, max_tokens=args.max_tokens, stop=list(local_model.STOP)
        )
        answer = (out["choices"][0]["message"]["content"] or "").strip()
        cited = prompt.cited_numbers(answer, len(hits))
        invalid = check_answer(answer, {n: h.text for n, h in enumerate(hits, 1)}).invalid_citations
        ok = bool(cited) and not invalid
        valid += ok
        # after the fact, as the service does: passages under their titles
        passages = {n: f"{prompt.document_title(h)}\n{h.text}" for n, h in enumerate(hits, 1)}
        final = attribute(answer, passages)
        after = prompt.cited_numbers(final.text, len(hits))
        topic = next(k for k in ANSWERING if k in question.lower())
        right = [n for n in after if hits[n - 1] is ANSWERING[topic]]
        valid_after += bool(after)
        right_after += bool(right)
        row = {"question": question, "top_k": len(hits), "valid": ok, "cited": cited}
        print(json.dumps({**row, "invalid": invalid, "answer": answer}))
        inferred = [a.n for a in final.attributed]
        print(json.dumps({"after": final.text, "cited": after, "inferred": inferred}))
    elapsed = time.monotonic() - started
    print(f"{gguf.name} {args.layout}{' +closing' if args.closing else ''}:", end=" ")
    print(f"{valid}/{len(CASES)} answers cite a valid [n] ({elapsed:.0f} s);", end=" ")
    print(f"after attribution {valid_after}/{len(CASES)} hold a valid [n],", end=" ")
    print(f"{right_after}/{len(CASES)} cite the passage that answers the question")


if __name__ == "__main__":
    main()
