"""Write minimal Outlook .msg files: a Compound File Binary (CFB v3) writer plus MSG properties.

No Python library writes .msg files, so tests build them here: [MS-CFB] for the container
(512-byte sectors, a mini stream for streams under 4 KiB) and [MS-OXMSG] for the property
streams (``__properties_version1.0`` and one ``__substg1.0_XXXXYYYY`` stream per string).
Output is deterministic: no timestamps, entries in a fixed order.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
FREESECT = 0xFFFFFFFF
ENDOFCHAIN = 0xFFFFFFFE
FATSECT = 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF

PT_INT32 = 0x0003
PT_BOOLEAN = 0x000B
PT_UNICODE = 0x001F
PT_SYSTIME = 0x0040
PT_BINARY = 0x0102

Tree = dict[str, "bytes | Tree"]


@dataclass
class _Entry:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    data: bytes = b""
    children: list[int] = field(default_factory=list)
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM
    start: int = ENDOFCHAIN
    size: int = 0


def write_cfb(tree: Tree) -> bytes:
    """Serialise ``tree`` ({name: bytes for a stream | dict for a storage}) as a CFB file."""
    entries = [_Entry("Root Entry", 5)]
    _add_children(entries, 0, tree)
    for entry in entries:
        entry.child = _bst(entries, sorted(entry.children, key=lambda i: _cfb_key(entries[i])))

    # mini stream: every small stream, in 64-byte mini sectors chained in the mini FAT
    mini_fat: list[int] = []
    mini_data = bytearray()
    for entry in entries:
        if entry.kind == 2 and 0 < len(entry.data) < MINI_CUTOFF:
            count = -(-len(entry.data) // MINI_SECTOR)
            entry.start, entry.size = len(mini_fat), len(entry.data)
            mini_fat += [len(mini_fat) + k + 1 for k in range(count - 1)] + [ENDOFCHAIN]
            mini_data += entry.data.ljust(count * MINI_SECTOR, b"\x00")
        elif entry.kind == 2:
            entry.size = len(entry.data)

    big_streams = [e for e in entries if e.kind == 2 and len(e.data) >= MINI_CUTOFF]
    n_dir = -(-len(entries) // (SECTOR // 128))
    n_minifat = -(-len(mini_fat) * 4 // SECTOR)
    n_ministream = -(-len(mini_data) // SECTOR)
    n_big = sum(-(-len(e.data) // SECTOR) for e in big_streams)
    payload = n_dir + n_minifat + n_ministream + n_big
    n_fat = 1
    while n_fat * (SECTOR // 4) < n_fat + payload:
        n_fat += 1
    if n_fat > 109:
        raise ValueError("file too large for a header-only DIFAT")

    fat: list[int] = [FATSECT] * n_fat
    sectors: list[bytes] = []

    def allocate(data: bytes) -> int:
        count = -(-len(data) // SECTOR)
        first = len(fat)
        fat.extend(first + k + 1 for k in range(count - 1))
        fat.append(ENDOFCHAIN)
        padded = data.ljust(count * SECTOR, b"\x00")
        sectors.extend(padded[k * SECTOR : (k + 1) * SECTOR] for k in range(count))
        return first

    dir_start_placeholder = len(fat)
    fat.extend([0] * n_dir)  # reserved; filled once entries know their start sectors
    minifat_start = allocate(b"".join(struct.pack("<I", v) for v in mini_fat)) if mini_fat else 0
    if mini_data:
        entries[0].start, entries[0].size = allocate(bytes(mini_data)), len(mini_data)
    for entry in big_streams:
        entry.start = allocate(entry.data)

    unused = n_dir * (SECTOR // 128) - len(entries)
    directory = b"".join(_pack_entry(e) for e in entries) + _empty_entry() * unused
    for k in range(n_dir):
        fat[dir_start_placeholder + k] = (
            dir_start_placeholder + k + 1 if k < n_dir - 1 else ENDOFCHAIN
        )
    dir_sectors = [directory[k * SECTOR : (k + 1) * SECTOR] for k in range(n_dir)]
    sectors = dir_sectors + sectors

    fat += [FREESECT] * (n_fat * (SECTOR // 4) - len(fat))
    fat_bytes = b"".join(struct.pack("<I", v) for v in fat)
    difat = list(range(n_fat)) + [FREESECT] * (109 - n_fat)
    header = b"".join(
        [
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            b"\x00" * 16,
            struct.pack("<HHHHH", 0x003E, 0x0003, 0xFFFE, 9, 6),
            b"\x00" * 6,
            struct.pack("<IIIIIIIII", 0, n_fat, dir_start_placeholder, 0, MINI_CUTOFF,
                        minifat_start if mini_fat else ENDOFCHAIN, n_minifat, ENDOFCHAIN, 0),
            b"".join(struct.pack("<I", v) for v in difat),
        ]
    )  # fmt: skip
    assert len(header) == SECTOR
    return header + fat_bytes + b"".join(sectors)


def _add_children(entries: list[_Entry], parent: int, tree: Tree) -> None:
    for name, value in tree.items():
        if len(name) > 31:
            raise ValueError(f"CFB names hold at most 31 characters: {name!r}")
        index = len(entries)
        entries[parent].children.append(index)
        if isinstance(value, dict):
            entries.append(_Entry(name, 1))
            _add_children(entries, index, value)
        else:
            entries.append(_Entry(name, 2, data=value))


def _cfb_key(entry: _Entry) -> tuple[int, str]:
    """CFB sibling order: shorter names first, then by upper-cased name."""
    return len(entry.name), entry.name.upper()


def _bst(entries: list[_Entry], ordered: list[int]) -> int:
    """Link ``ordered`` siblings as a balanced binary search tree; return its root."""
    if not ordered:
        return NOSTREAM
    middle = len(ordered) // 2
    root = ordered[middle]
    entries[root].left = _bst(entries, ordered[:middle])
    entries[root].right = _bst(entries, ordered[middle + 1 :])
    return root


def _pack_entry(entry: _Entry) -> bytes:
    name = entry.name.encode("utf-16-le") + b"\x00\x00"
    return b"".join(
        [
            name.ljust(64, b"\x00"),
            struct.pack("<HBB", len(name), entry.kind, 1),
            struct.pack("<III", entry.left, entry.right, entry.child),
            b"\x00" * 16,  # CLSID
            struct.pack("<I", 0),  # state bits
            b"\x00" * 16,  # creation and modification times
            struct.pack("<IQ", entry.start if entry.kind != 1 else 0, entry.size),
        ]
    )


def _empty_entry() -> bytes:
    return b"\x00" * 64 + struct.pack("<HBB", 0, 0, 0) + struct.pack("<III", *[NOSTREAM] * 3) + (
        b"\x00" * 36
    ) + struct.pack("<IQ", 0, 0)  # fmt: skip


# --- MSG ---------------------------------------------------------------------------------


def _properties(
    header: bytes,
    strings: dict[int, str],
    fixed: dict[int, tuple[int, int]],
    binaries: dict[int, bytes] | None = None,
) -> dict[str, bytes]:
    """A property stream plus one substorage stream per string (or binary) property."""
    streams: dict[str, bytes] = {}
    rows = []
    for pid, blob in sorted((binaries or {}).items()):
        streams[f"__substg1.0_{pid:04X}{PT_BINARY:04X}"] = blob
        rows.append(struct.pack("<IIII", (pid << 16) | PT_BINARY, 0x6, len(blob), 0))
    for pid, (ptype, value) in sorted(fixed.items()):
        rows.append(struct.pack("<IIQ", (pid << 16) | ptype, 0x6, value))
    for pid, text in sorted(strings.items()):
        data = text.encode("utf-16-le")
        streams[f"__substg1.0_{pid:04X}{PT_UNICODE:04X}"] = data
        rows.append(struct.pack("<IIII", (pid << 16) | PT_UNICODE, 0x6, len(data) + 2, 0))
    streams["__properties_version1.0"] = header + b"".join(rows)
    return streams


def write_msg(
    *,
    subject: str,
    body: str,
    sender_name: str,
    sender_email: str,
    to_name: str,
    to_email: str,
    sent_filetime: int = 133_000_000_000_000_000,
    attachments: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
) -> bytes:
    """A plain-text Outlook message (IPM.Note) with one recipient and ``(file name, bytes)``
    attachments (by value), as .msg bytes."""
    headers = (
        f'From: "{sender_name}" <{sender_email}>\r\nTo: "{to_name}" <{to_email}>\r\n'
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    )
    message = _properties(
        struct.pack("<8xIIII8x", 1, len(attachments), 1, len(attachments)),
        {
            0x001A: "IPM.Note",  # message class
            0x0037: subject,
            0x1000: body,
            0x0C1A: sender_name,
            0x0C1F: sender_email,
            0x0E04: to_name,  # display to
            0x007D: headers,  # transport message headers
        },
        {
            0x0039: (PT_SYSTIME, sent_filetime),  # client submit time
            0x0E06: (PT_SYSTIME, sent_filetime),  # delivery time
            0x0E07: (PT_INT32, 0x1),  # message flags: read
            0x340D: (PT_INT32, 0x00040000),  # store support mask: unicode ok
        },
    )
    recipient = _properties(
        b"\x00" * 8,
        {0x3001: to_name, 0x3003: to_email, 0x39FE: to_email, 0x3002: "SMTP"},
        {0x0C15: (PT_INT32, 1), 0x3000: (PT_INT32, 0)},  # recipient type To, row id
    )
    named = {
        "__substg1.0_00020102": b"",
        "__substg1.0_00030102": b"",
        "__substg1.0_00040102": b"",
    }
    tree: Tree = {
        **message,
        "__nameid_version1.0": dict(named),
        "__recip_version1.0_#00000000": dict(recipient),
    }
    for number, (filename, data) in enumerate(attachments):
        tree[f"__attach_version1.0_#{number:08X}"] = _properties(
            b"\x00" * 8,
            {0x3707: filename, 0x3704: filename[:12], 0x3001: filename},
            {0x3705: (PT_INT32, 1), 0x0E21: (PT_INT32, number), 0x370B: (PT_INT32, 0xFFFFFFFF)},
            {0x3701: data},
        )
    return write_cfb(tree)
