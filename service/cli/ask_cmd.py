"""``inhouse ask "question" [--collection C] [--show-reasoning] [--json]``.

Asks the running service over HTTP (``INHOUSE_URL``, default http://127.0.0.1:8000; key
from ``INHOUSE_API_KEY``), streams the answer to the terminal, then lists the sources.
Going through the service rather than answering in-process keeps one loaded encoder,
one model client and one set of access rules (and audit trail) for every client, and
keeps this command fast to start. When no model can answer, the service's extract
(sentences quoted from the documents) is printed with a one-line notice on stderr;
figures of a generated answer found in none of its sources are named on stderr. Exit
codes: 0 answered (by the model or with an extract), 1 the service could not answer
(error, or sources only), 2 usage error or service unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from service.cli.output import USAGE_ERROR, console, fail_usage, print_json
from service.textsafe import escape_control

DEFAULT_URL = "http://127.0.0.1:8000"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="ask the running service a question",
        description="Stream an answer with numbered sources from the running service"
        f" (INHOUSE_URL, default {DEFAULT_URL}; API key from INHOUSE_API_KEY).",
    )
    parser.add_argument("question", help="the question (quote it)")
    parser.add_argument(
        "--collection",
        action="append",
        default=[],
        metavar="C",
        help="collection to search (repeatable; default: all you may read)",
    )
    parser.add_argument("--top-k", type=int, default=None, help="passages to retrieve")
    parser.add_argument(
        "--show-reasoning",
        action="store_true",
        help="also show the model's reasoning (needs a key with reasoning:read)",
    )
    parser.add_argument(
        "--fallback",
        choices=("extract", "sources", "none"),
        default="extract",
        help="when no model can answer: quote the documents (default), list the sources"
        " only, or fail",
    )
    parser.add_argument(
        "--extract", action="store_true", help="quote the documents without asking the model"
    )
    parser.add_argument("--json", action="store_true", help="print the whole JSON response")
    parser.add_argument("--url", default=None, help="service URL (overrides INHOUSE_URL)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import httpx

    url = (args.url or os.environ.get("INHOUSE_URL") or DEFAULT_URL).rstrip("/")
    if not url.startswith(("http://", "https://")):
        return fail_usage(f"the service URL must start with http:// or https://, not {url!r}")
    body: dict[str, Any] = {
        "question": args.question,
        "include_reasoning": args.show_reasoning,
        "fallback": args.fallback,
    }
    if args.extract:
        body["mode"] = "extract"
    if args.collection:
        body["collections"] = args.collection
    if args.top_k is not None:
        body["top_k"] = args.top_k
    headers = {}
    if key := os.environ.get("INHOUSE_API_KEY"):
        headers["Authorization"] = f"Bearer {key}"
    timeout = httpx.Timeout(10.0, read=None if args.json else 120.0)
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=timeout) as client:
            if args.json:
                return _ask_json(client, body)
            return _ask_stream(client, body)
    except httpx.ConnectError:
        return fail_usage(
            f"cannot reach the Inhouse service at {url}: start it with `inhouse serve`"
        )
    except httpx.HTTPError as exc:
        _error(f"connection to {url} failed: {exc}")
        return 1
    except KeyboardInterrupt:  # closing the connection cancels the answer server-side
        return 130


def _ask_json(client: Any, body: dict[str, Any]) -> int:
    response = client.post("/v1/query", json=body)
    print_json(response.json())
    return 0 if response.status_code == 200 and response.json().get("mode") != "sources" else 1


def _ask_stream(client: Any, body: dict[str, Any]) -> int:
    out = console()
    citations: list[dict[str, Any]] = []
    cited: set[int] = set()
    status = 1
    in_reasoning = False
    streamed: list[str] = []
    with client.stream("POST", "/v1/query", json={**body, "stream": True}) as response:
        if response.status_code != 200:
            response.read()
            return _http_error(response)
        for name, data in iter_sse(response.iter_lines()):
            if name == "sources":
                citations = data["citations"]
            elif name == "reasoning":
                if not in_reasoning:
                    out.print("Reasoning:", style="bold dim")
                    in_reasoning = True
                out.print(
                    escape_control(data["text"], keep_newlines=True),
                    style="dim",
                    end="",
                    markup=False,
                    highlight=False,
                )
            elif name == "token":
                if in_reasoning:
                    out.print("\n")
                    in_reasoning = False
                streamed.append(data["text"])
                sys.stdout.write(escape_control(data["text"], keep_newlines=True))
                sys.stdout.flush()
            elif name == "done":
                cited = set(data.get("cited", []))
                answer = data.get("answer")
                replaced = data.get("mode") == "extract"  # strict grounding replaced it
                if replaced and isinstance(answer, str) and answer != "".join(streamed):
                    sys.stdout.write(f"\n\n{escape_control(answer, keep_newlines=True)}")
                status = _report(data)
            elif name == "error":
                sys.stdout.write("\n")
                _error(f"{data['code']}: {data['message']}")
                return 1
    sys.stdout.write("\n")
    _print_sources(out, citations, cited)
    return status


def _report(done: dict[str, Any]) -> int:
    """Notices and grounding warnings on stderr; the exit status of the answer."""
    mode = done.get("mode", "model")
    notice = done.get("notice")
    if mode == "sources":
        _error(notice["message"] if notice else "no answer; only the sources came back")
        return 1
    if notice:
        _note(notice["message"])
    grounding = done.get("grounding") or {}
    unsupported = [u["text"] for u in grounding.get("unsupported", [])]
    invalid = grounding.get("invalid_citations", [])
    if unsupported:
        shown = "; ".join(unsupported[:5]) + ("; ..." if len(unsupported) > 5 else "")
        _note(f"not found in the cited sources: {shown}", "warning")
    if invalid:
        _note(f"citations to no source: {', '.join(f'[{n}]' for n in invalid)}", "warning")
    attributed = grounding.get("attributed", [])
    answer = done.get("answer") or ""
    if attributed and mode == "model":
        shown = ", ".join(f"[{a['n']}] for {_sentence(answer, a)}" for a in attributed[:3])
        more = ", ..." if len(attributed) > 3 else ""
        _note(f"citations added by the service (the model cited nothing there): {shown}{more}")
    return 0


def _sentence(answer: str, mark: dict[str, Any]) -> str:
    """The start of the sentence an attributed mark cites, quoted."""
    start = mark["sentence"][0]
    text = " ".join(answer[start : mark["span"][0]].split())
    return f"“{text[:40]}…”" if len(text) > 40 else f"“{text}”"


def _note(message: str, label: str = "note") -> None:
    from rich.console import Console
    from rich.text import Text

    style = "bold yellow" if label == "warning" else "bold cyan"
    console = Console(stderr=True, highlight=False, soft_wrap=True)  # one line, never wrapped
    console.print(Text.assemble((f"{label}: ", style), escape_control(message)))


def _print_sources(out: Any, citations: list[dict[str, Any]], cited: set[int]) -> None:
    if not citations:
        return
    out.print("\nSources:", style="bold")
    for c in citations:
        page = f", p. {c['page']}" if c.get("page") is not None else ""
        mark = "*" if c["n"] in cited else " "
        line = f"{mark}[{c['n']}] {c['title']}{page} ({c['collection']}: {c['source']})"
        out.print(escape_control(line), markup=False, highlight=False)


def iter_sse(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """(event, JSON data) pairs from SSE lines; comments and unnamed events skipped."""
    name, data = "", list[str]()
    for line in lines:
        if not line:
            if name and data:
                yield name, json.loads("\n".join(data))
            name, data = "", []
        elif line.startswith("event:"):
            name = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].strip())
    if name and data:
        yield name, json.loads("\n".join(data))


def _http_error(response: Any) -> int:
    try:
        error = response.json()["error"]
        _error(f"{error['code']}: {error['message']}")
    except (ValueError, KeyError, TypeError):
        _error(f"the service answered {response.status_code}")
    return USAGE_ERROR if response.status_code in (401, 403) else 1


def _error(message: str) -> None:
    from rich.text import Text

    console(stderr=True).print(Text.assemble(("error: ", "bold red"), escape_control(message)))
