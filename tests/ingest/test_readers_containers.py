"""Archives and e-mail attachments parsed as members; hostile members refused; read back."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ingest.containers import read_member
from ingest.documents import ParsedDocument
from ingest.errors import TooLarge
from ingest.parse import parse_file
from ingest.settings import ParseSettings
from tests.ingest import reader_fixtures as rf
from tests.ingest.msg_writer import write_msg


def _members(document: ParsedDocument) -> dict[str, tuple[str | None, str]]:
    return {
        m.name: (
            m.error_code,
            " ".join(e.text for e in m.document.elements) if m.document else m.error_message or "",
        )
        for m in document.members
    }


def _hostile_zip() -> bytes:
    inner = rf.zip_bytes([("b.md", b"# Nested\n\nThe zebranested body text.")])
    return rf.zip_bytes(
        [
            ("dir/a.txt", b"The zebrazip text inside the archive."),
            ("inner.zip", inner),
            ("../evil.txt", b"escape attempt"),
            ("/etc/abs.txt", b"absolute"),
            ("secret.txt", b"zebrasecret"),
            ("__MACOSX/dir/._a.txt", b"resource fork"),
        ],
        encrypted={"secret.txt"},
    )


def test_zip_members_nested_and_hostile(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    path.write_bytes(_hostile_zip())
    document = parse_file(path, ParseSettings())
    members = _members(document)
    assert document.file_type == "zip"
    assert set(members) == {
        "dir/a.txt", "inner.zip", "inner.zip/b.md", "evil.txt", "etc/abs.txt", "secret.txt"
    }  # fmt: skip
    assert members["dir/a.txt"] == (None, "The zebrazip text inside the archive.")
    assert "zebranested" in members["inner.zip/b.md"][1]
    assert members["evil.txt"][0] == members["etc/abs.txt"][0] == "unsupported_type"
    assert "leaves the archive" in members["evil.txt"][1]
    assert members["secret.txt"] == ("encrypted", members["secret.txt"][1])
    assert "never guessed" in members["secret.txt"][1]
    assert "dir/a.txt" in document.elements[0].text  # the archive's own text lists its files


def test_tar_refuses_links_devices_and_fifos(tmp_path: Path) -> None:
    path = tmp_path / "bundle.tar.gz"
    path.write_bytes(rf.tar_bytes([("docs/c.txt", b"The zebratar note.")], hostile=True))
    members = _members(parse_file(path, ParseSettings()))
    assert members["docs/c.txt"] == (None, "The zebratar note.")
    assert members["link"][0] == "unsupported_type" and "link" in members["link"][1]
    assert members["dev"][0] == members["pipe"][0] == "unsupported_type"


def test_archive_limits_hold(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(rf.zip_bytes([("zeros.txt", b"0" * 4_000_000)]))
    with pytest.raises(TooLarge, match="zip"):
        parse_file(bomb, ParseSettings())
    tar_bomb = tmp_path / "bomb.tgz"
    tar_bomb.write_bytes(rf.tar_bytes([("zeros.txt", b"0" * 4_000_000)]))
    with pytest.raises(TooLarge, match="inflates"):
        parse_file(tar_bomb, ParseSettings())
    big = tmp_path / "big.zip"
    rng = random.Random(1)
    noise = bytes(rng.choice(b"ab") for _ in range(2 * 1024 * 1024))  # 2 MiB -> ~0.3 MiB
    big.write_bytes(rf.zip_bytes([("big.txt", noise)]))
    assert big.stat().st_size < 1024 * 1024
    members = _members(parse_file(big, ParseSettings(max_file_mb=1)))
    assert members["big.txt"][0] == "too_large"


def test_nesting_stops_at_the_depth_limit(tmp_path: Path) -> None:
    data = rf.zip_bytes([("deep.txt", b"The zebradeep text.")])
    for level in range(3):
        data = rf.zip_bytes([(f"level{level}.zip", data)])
    path = tmp_path / "deep.zip"
    path.write_bytes(data)
    members = _members(parse_file(path, ParseSettings(max_archive_depth=2)))
    assert members["level2.zip"][0] is None  # depth 2 is opened...
    assert members["level2.zip/level1.zip"][0] == "too_large"  # ...depth 3 is not
    assert not any("deep.txt" in name for name in members)


def test_eml_attachments_are_members(tmp_path: Path) -> None:
    path = tmp_path / "mail.eml"
    path.write_bytes(
        rf.eml_with_attachments(
            "The zebramail body.",
            [
                ("report.txt", "text/plain", b"The zebraattached report."),
                ("report.txt", "text/plain", b"The zebrasecond report."),
                ("memo.docx", "application/octet-stream", rf.docx_bytes("zebramemo")),
            ],
        )
    )
    document = parse_file(path, ParseSettings())
    members = _members(document)
    text = " ".join(e.text for e in document.elements)
    assert "zebramail" in text and "Attachments: report.txt, report (2).txt, memo.docx" in text
    assert "zebraattached" not in text  # the attachment is its own document
    assert members["report.txt"] == (None, "The zebraattached report.")
    assert members["report (2).txt"] == (None, "The zebrasecond report.")
    assert "zebramemo" in members["memo.docx"][1]
    assert read_member(path, "report (2).txt", ParseSettings()) == b"The zebrasecond report."


def test_msg_attachments_are_members(tmp_path: Path) -> None:
    path = tmp_path / "outlook.msg"
    path.write_bytes(
        write_msg(
            subject="Papers",
            body="The zebramsgbody text.",
            sender_name="Alice",
            sender_email="alice@example.com",
            to_name="Bob",
            to_email="bob@example.com",
            attachments=[("notes.txt", b"The zebramsgattached notes.")],
        )
    )
    document = parse_file(path, ParseSettings())
    assert _members(document) == {"notes.txt": (None, "The zebramsgattached notes.")}
    assert "zebramsgbody" in " ".join(e.text for e in document.elements)


def test_read_member_finds_nested_members_and_refuses_others(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    path.write_bytes(_hostile_zip())
    settings = ParseSettings()
    assert (
        read_member(path, "inner.zip/b.md", settings) == b"# Nested\n\nThe zebranested body text."
    )
    assert read_member(path, "dir/a.txt", settings) == b"The zebrazip text inside the archive."
    for refused in ("evil.txt", "secret.txt", "missing.txt", "inner.zip/none.md"):
        assert read_member(path, refused, settings) is None


def test_an_encrypted_message_is_reported_not_its_encrypted_parts(tmp_path: Path) -> None:
    from email.message import EmailMessage

    from ingest.errors import EncryptedFile

    message = EmailMessage()
    message["From"] = "Alice Example <alice@example.com>"
    message["To"] = "Bob Example <bob@example.com>"
    message["Subject"] = "Sealed"
    message["Date"] = "Tue, 02 Jan 2024 03:04:05 +0000"
    message.set_content(
        b"\x30\x80\x06\x09encrypted-bytes" * 20,
        maintype="application",
        subtype="pkcs7-mime",
        params={"smime-type": "enveloped-data"},
        disposition="attachment",
        filename="smime.p7m",
    )
    path = tmp_path / "sealed.eml"
    path.write_bytes(message.as_bytes())
    with pytest.raises(EncryptedFile, match="encrypted"):
        parse_file(path, ParseSettings())
