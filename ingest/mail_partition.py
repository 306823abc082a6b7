"""The e-mail partitioner (.eml bodies, never attachments) and the encrypted-message check.

Attachments become documents of their own through ``ingest.containers.email_members``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ingest.detect import decode_text
from ingest.partitioners import NO_LANGUAGE_DETECTION, utf8_file

if TYPE_CHECKING:
    from unstructured.documents.elements import Element

    from ingest.settings import ParseSettings


def partition_email_file(path: Path, _text: str | None, _settings: ParseSettings) -> list[Element]:
    """The message's bodies (subject and headers aside); its inline text parts as a fallback."""
    from unstructured.partition.email import partition_email

    data = path.read_bytes()
    # attachments would bypass detection and limits (and reach for models): bodies only
    if b"\x00" in data[:4096]:  # UTF-16/32 saved mail: the email parser wants bytes it can read
        utf8 = utf8_file(decode_text(data))
        elements = partition_email(
            file=utf8,
            metadata_filename=str(path),
            process_attachments=False,
            **NO_LANGUAGE_DETECTION,
        )
    else:
        elements = partition_email(
            filename=str(path), process_attachments=False, **NO_LANGUAGE_DETECTION
        )
    return elements or _email_text_parts(data)


def _email_text_parts(data: bytes) -> list[Element]:
    """Text of every inline part, nested messages included (digests, forwarded mail)."""
    import email
    import email.policy

    message = email.message_from_bytes(data, policy=email.policy.default)
    plain: list[str] = []
    markup: list[str] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind in ("text/plain", "text/html"):
            try:
                content = part.get_content()
            except (LookupError, ValueError):  # unknown charset or broken encoding
                payload = part.get_payload(decode=True)
                content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            (plain if kind == "text/plain" else markup).append(str(content))
    if plain:
        from unstructured.partition.text import partition_text

        return partition_text(text="\n\n".join(plain), **NO_LANGUAGE_DETECTION)
    if markup:
        from unstructured.partition.html import partition_html

        return partition_html(text="\n".join(markup), **NO_LANGUAGE_DETECTION)
    return []


def email_is_encrypted(kind: str, path: Path) -> bool:
    """An S/MIME or PGP message (``eml``) or an encrypted Outlook message (``msg``)."""
    if kind == "msg":
        from oxmsg import Message

        message = Message.load(str(path))
        content_type = message.message_headers.get("Content-Type", "")
        return (
            "encrypted" in content_type
            or "pkcs7-mime" in content_type
            or any((a.file_name or "").lower().endswith(".p7m") for a in message.attachments)
        )
    from email.parser import BytesHeaderParser

    with open(path, "rb") as handle:
        headers = BytesHeaderParser().parse(handle)
    content_type = str(headers.get("Content-Type", "")).lower()
    return "encrypted" in content_type or "pkcs7-mime" in content_type
