"""``inhouse ask`` against the live service, and ``inhouse serve`` as a real process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.api.deps import get_retriever
from service.api.main import create_app
from service.cli import main
from tests.service.api_support import LiveService, build_index, make_retriever, service_settings
from tests.service.ollama_server import OllamaTestServer, Reply

SECRET = "MARMOT-MUSING-2208"
ANSWER = "Salaries are paid on the 25th [1]."


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index")
    build_index(path)
    return path


@pytest.fixture
def live(
    data_dir: Path, ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveService]:
    retriever = make_retriever(data_dir)
    app = create_app(service_settings(data_dir, ollama_server.url))
    app.dependency_overrides[get_retriever] = lambda: retriever
    with LiveService(app) as service:
        monkeypatch.setenv("INHOUSE_URL", service.url)
        monkeypatch.delenv("INHOUSE_API_KEY", raising=False)
        yield service


def test_ask_streams_the_answer_then_the_sources(
    live: LiveService, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.script.push(Reply.answer(ANSWER, f"{SECRET} payroll"))

    code = main(["ask", "When are salaries paid?", "--collection", "finance"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(ANSWER + "\n")
    assert "Sources:" in out and "*[1] Payroll Calendar, p. 1 (finance: payroll.docx)" in out
    assert SECRET not in out + err


def test_ask_shows_reasoning_when_asked(
    live: LiveService, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.script.push(Reply.answer(ANSWER, f"{SECRET} payroll"))

    code = main(["ask", "When are salaries paid?", "--show-reasoning"])

    out, _ = capsys.readouterr()
    assert code == 0
    assert out.index("Reasoning:") < out.index(SECRET) < out.index(ANSWER)


def test_ask_json_prints_the_response(
    live: LiveService, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.script.push(Reply.answer(ANSWER, SECRET))

    code = main(["ask", "When are salaries paid?", "--json"])

    out, _ = capsys.readouterr()
    assert code == 0
    body = json.loads(out)
    assert body["answer"] == ANSWER and body["citations"][0]["n"] == 1
    assert SECRET not in out


def test_ask_reports_service_errors_with_exit_1(
    live: LiveService, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ask", "Anything?", "--collection", "nosuch"])

    _, err = capsys.readouterr()
    assert code == 1
    assert "collection_not_found" in err


def test_ask_model_down_prints_the_extract_and_exits_0(
    live: LiveService, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.script.models.clear()

    code = main(["ask", "When are salaries paid?"])

    out, err = capsys.readouterr()
    assert code == 0
    assert "“Salaries are paid on the 25th of every month by bank transfer.” [" in out
    assert "Sources:" in out and "Payroll Calendar" in out
    assert len(err.strip().splitlines()) == 1 and "quoted from the documents" in err


def test_ask_model_down_with_sources_fallback_exits_1(
    live: LiveService, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.script.models.clear()

    code = main(["ask", "When are salaries paid?", "--fallback", "sources"])

    out, err = capsys.readouterr()
    assert code == 1
    assert "model_missing" not in out and "passages" in err
    assert "Sources:" in out and "Payroll Calendar" in out


def test_ask_names_unsupported_figures_on_stderr(
    live: LiveService, ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.script.push(Reply.answer("Salaries are paid on the 28th [1], 40% by cheque [1]."))

    code = main(["ask", "When are salaries paid?"])

    out, err = capsys.readouterr()
    assert code == 0 and "40% by cheque" in out
    assert "warning" in err and "40%" in err


def test_ask_without_a_service_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("INHOUSE_URL", f"http://127.0.0.1:{sock.getsockname()[1]}")

    code = main(["ask", "Hello?"])

    assert code == 2
    assert "inhouse serve" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_runs_the_service_until_interrupted(
    data_dir: Path, ollama_server: OllamaTestServer, tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "INHOUSE_DATA_DIR": str(data_dir),
        "OLLAMA_HOST": ollama_server.url,
        "INHOUSE_AUTH": "disabled",
        "INHOUSE_DEMO_MODEL__USE": "never",
        "INHOUSE_REASONING_LOG__DIR": str(tmp_path / "reasoning"),
    }
    command = [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main())"]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--log-level", "info"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.5)
        ollama_server.script.push(Reply.answer(ANSWER, SECRET))
        response = httpx.post(
            f"{url}/v1/query", json={"question": "When are salaries paid?"}, timeout=60
        )
        assert response.status_code == 200 and response.json()["answer"] == ANSWER
        ollama_server.script.push(Reply.failing(500, f"model crashed while thinking: {SECRET}"))
        response = httpx.post(
            f"{url}/v1/query",
            json={"question": "When are salaries paid?", "fallback": "none"},
            timeout=60,
        )
        assert response.status_code == 502  # the caller sees the upstream message; the log not
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    # info level is on in the output checked (uvicorn's raw-path access log is off by design)
    assert "Application startup complete" in output
    assert SECRET not in output


def test_ask_notes_citations_the_service_added(capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli.ask_cmd import _report

    answer = "Employees get 27 days of paid vacation [1]. The moon is cheese."
    mark = answer.index("[1]")
    done = {
        "mode": "model",
        "answer": answer,
        "grounding": {
            "unsupported": [],
            "invalid_citations": [3],
            "attributed": [{"n": 1, "span": [mark, mark + 3], "sentence": [0, mark + 4]}],
        },
    }

    assert _report(done) == 0
    err = capsys.readouterr().err
    assert "citations to no source: [3]" in err
    assert "citations added by the service" in err
    assert "[1] for “Employees get 27 days of paid vacation”" in err
