"""The attachments of an e-mail (EML or Outlook MSG), as container members.

An attachment is a part with ``Content-Disposition: attachment``, or any non-text part
with a file name (``inline`` images of a newsletter without a name are skipped); an
attached message (``message/rfc822``, a forwarded mail) becomes ``<subject>.eml``. Names
come from the part's file name, cleaned like archive member names (``ingest.archives``):
a name used twice gets `` (2)``, `` (3)`` before its extension, in message order, so the
same message always gives the same names (``ingest.containers`` relies on that to serve
an attachment again from its message).
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from email.message import Message
from pathlib import Path

from ingest.archives import RawMember, safe_name
from ingest.errors import TooLarge
from ingest.limits import MIB
from ingest.settings import ParseSettings

EMAIL_TYPES = frozenset({"eml", "msg"})


def email_attachments(path: Path, kind: str, settings: ParseSettings) -> list[RawMember]:
    """The attachments of the message at ``path``, named uniquely."""
    found = _msg_attachments(path) if kind == "msg" else _eml_attachments(path.read_bytes())
    members: list[RawMember] = []
    for name, data in zip(unique_names([n for n, _ in found]), (d for _, d in found), strict=True):
        if len(data) > settings.max_file_mb * MIB:
            error = TooLarge(
                f"the attachment is {len(data) / MIB:.1f} MiB, over the"
                f" {settings.max_file_mb:g} MiB limit"
            )
            members.append(RawMember(name, len(data), error=error))
        else:
            members.append(RawMember(name, len(data), read=_constant(data)))
    return members


def unique_names(names: list[str]) -> list[str]:
    """``names`` with repeats renamed ``a (2).pdf``, ``a (3).pdf`` (deterministic)."""
    namer = UniqueNamer()
    return [namer(name) for name in names]


class UniqueNamer:
    """Gives each name in turn, renaming repeats: ``a (2).pdf``, ``a (3).pdf``."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, name: str) -> str:
        candidate, number = name, 1
        while candidate.lower() in self._seen:
            number += 1
            stem, dot, ext = name.rpartition(".")
            candidate = f"{stem} ({number}).{ext}" if dot and stem else f"{name} ({number})"
        self._seen.add(candidate.lower())
        return candidate


def _constant(data: bytes) -> Callable[[], bytes]:
    def read() -> bytes:
        return data

    return read


def _clean(filename: str | None, fallback: str) -> str:
    name, _ = safe_name(filename or "")
    name = name.rsplit("/", 1)[-1]  # an attachment has no folders
    return name[:200] or fallback


def _eml_attachments(data: bytes) -> list[tuple[str, bytes]]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    out: list[tuple[str, bytes]] = []
    _walk(message, out, top=True)
    return out


def _walk(part: Message, out: list[tuple[str, bytes]], *, top: bool = False) -> None:
    content_type = part.get_content_type()
    if content_type == "message/rfc822" and not top:
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            inner_message = inner[0]
            subject = str(inner_message.get("Subject", "") or "")
            name = _clean(subject and f"{subject}.eml", f"message-{len(out) + 1}.eml")
            if not name.lower().endswith(".eml"):
                name += ".eml"
            out.append((name, inner_message.as_bytes(policy=email.policy.default)))
        return
    if part.is_multipart():
        for sub in part.get_payload():
            if isinstance(sub, Message):
                _walk(sub, out)
        return
    if top:
        return
    disposition = part.get_content_disposition()
    filename = part.get_filename()
    is_text_body = content_type in ("text/plain", "text/html") and disposition != "attachment"
    if is_text_body or (disposition != "attachment" and not filename):
        return
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return
    out.append((_clean(filename, f"attachment-{len(out) + 1}"), payload))


def _msg_attachments(path: Path) -> list[tuple[str, bytes]]:
    from oxmsg import Message as OutlookMessage

    message = OutlookMessage.load(str(path))
    out: list[tuple[str, bytes]] = []
    for attachment in message.attachments:
        data = attachment.file_bytes
        if not data:
            continue  # an embedded message or OLE object oxmsg cannot give as bytes
        out.append((_clean(attachment.file_name, f"attachment-{len(out) + 1}"), data))
    return out
