"""Zero egress: a full ingest (PDF path included) makes no non-loopback connection or lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ingest.cli_helpers import run_inhouse

pytestmark = pytest.mark.slow

# Loaded by every Python process of the run (CLI and parser workers) via PYTHONPATH.
GUARD = r"""
import json, os, socket

_LOG = os.environ["EGRESS_LOG"]
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback(host):
    if host is None:
        return True
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host in _LOOPBACK_NAMES or host.startswith("127.") or host in ("::1", "0.0.0.0", ""):
        return True
    return False


def _record(kind, target):
    with open(_LOG, "a") as fh:
        fh.write(json.dumps({"pid": os.getpid(), "kind": kind, "target": repr(target)}) + "\n")


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        _record("connect", address)
        raise OSError("egress blocked by test guard")
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        _record("connect", address)
        return 111
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if not _is_loopback(host):
        _record("dns", host)
        raise socket.gaierror("lookup blocked by test guard")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.getaddrinfo = getaddrinfo
"""


def make_docs(root: Path) -> None:
    from docx import Document
    from fpdf import FPDF

    root.mkdir(parents=True)
    pdf = FPDF()
    for page in range(2):
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, f"Quarterly report page {page + 1}. Revenue grew in every region.")
    pdf.output(str(root / "report.pdf"))
    doc = Document()
    doc.add_heading("Travel policy", level=1)
    doc.add_paragraph("Book trains for trips under four hours.")
    doc.save(str(root / "travel.docx"))
    (root / "notes.md").write_text("# Notes\n\nThe cafeteria serves lunch from noon.\n")
    (root / "page.html").write_text("<html><body><h1>Intranet</h1><p>Welcome.</p></body></html>")


def test_full_ingest_makes_no_outside_connection(tmp_path: Path) -> None:
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "egress.log"
    log.write_text("")
    docs = tmp_path / "docs"
    make_docs(docs)
    done = run_inhouse(
        ["ingest", str(docs), "--json"],
        tmp_path / "data",
        PYTHONPATH=str(guard_dir),
        EGRESS_LOG=str(log),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["counts"]["indexed"] == 4
    attempts = [json.loads(line) for line in log.read_text().splitlines() if line]
    assert attempts == [], f"outside connections attempted: {attempts}"


def test_guard_detects_a_connection(tmp_path: Path) -> None:
    """The guard itself works: a deliberate lookup of an outside host is recorded."""
    import subprocess
    import sys

    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "egress.log"
    code = (
        "import socket\n"
        "try:\n    socket.getaddrinfo('example.com', 443)\nexcept OSError:\n    pass\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(guard_dir), "EGRESS_LOG": str(log), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert "example.com" in log.read_text()
