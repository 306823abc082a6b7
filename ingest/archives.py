"""Zip and tar archives (tar.gz, .tgz, tar.bz2, tar.xz too): their members, read safely.

Nothing is ever extracted under a member's own name: a member's bytes are read into memory
(never more than its declared size, and only when that is within ``max_file_mb``) and
parsed from a temporary file with a neutral name. Refused, and reported as failed members:
names that leave the archive (``..``, absolute paths), symbolic and hard links, devices and
FIFOs, encrypted zip members (never guessed). Hidden and temporary names (``__MACOSX/``,
``.DS_Store``, ``~$x.docx``) are skipped like discovery skips them. The whole archive is
refused as ``too_large`` when its declared total, compression ratio or member count exceeds
the limits of ``ingest.limits``. How members become documents: ``ingest.containers``.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.discover import is_skipped_name
from ingest.errors import CorruptFile, EncryptedFile, FileRejected, TooLarge, UnsupportedType
from ingest.limits import MAX_ZIP_MEMBERS, MIB, check_zip_container
from ingest.settings import ParseSettings

ARCHIVE_TYPES = frozenset({"zip", "tar"})
_COMPRESSED_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


@dataclass(frozen=True, slots=True)
class RawMember:
    """One member of a container: its name there, size, and how to read it (or why not)."""

    name: str
    size: int
    read: Callable[[], bytes] | None = None
    error: FileRejected | None = None


def is_tar(path: Path, head: bytes) -> bool:
    """True for a tar archive, plain or gzip/bzip2/xz-compressed."""
    if head[257:262] == b"ustar":
        return True
    if not head.startswith(_COMPRESSED_MAGICS):
        return False
    try:
        with tarfile.open(path, "r:*") as archive:
            return archive.next() is not None
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return False


def safe_name(name: str) -> tuple[str, bool]:
    """A member name as a clean relative POSIX path, and whether the original was safe.

    Backslashes count as separators (zips made on Windows); ``.`` and empty parts go.
    A name with ``..`` parts or an absolute one is unsafe: its cleaned form (without them)
    only names the failed member in the report.
    """
    raw = name.replace("\\", "/")
    parts = raw.split("/")
    unsafe = raw.startswith("/") or ".." in parts or (len(parts[0]) == 2 and parts[0][1] == ":")
    kept = [
        "".join(ch if ch.isprintable() else "_" for ch in part)
        for part in parts
        if part not in ("", ".", "..") and not (len(part) == 2 and part[1] == ":")
    ]
    return "/".join(kept), not unsafe


def archive_members(path: Path, kind: str, settings: ParseSettings) -> Iterator[RawMember]:
    """The file members of a zip or tar archive, in archive order (limits checked first)."""
    if kind == "zip":
        yield from _zip_members(path, settings)
    elif kind == "tar":
        yield from _tar_members(path, settings)
    else:
        raise UnsupportedType(f"not an archive: {kind}")


def _skipped(name: str) -> bool:
    return name.startswith("__MACOSX/") or any(is_skipped_name(p) for p in name.split("/"))


def _refusal(name: str, size: int, why: FileRejected) -> RawMember:
    return RawMember(name=name or "unnamed", size=size, error=why)


def _zip_members(path: Path, settings: ParseSettings) -> Iterator[RawMember]:
    check_zip_container(path, settings)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CorruptFile(f"damaged zip archive ({exc})") from None
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name, safe = safe_name(info.filename)
            if _skipped(name):
                continue
            mode = info.external_attr >> 16
            if not safe:
                yield _refusal(name, info.file_size, UnsupportedType(_LEAVES))
            elif mode and stat.S_ISLNK(mode):
                yield _refusal(name, info.file_size, UnsupportedType(_LINK))
            elif mode and not stat.S_ISREG(mode):
                yield _refusal(name, info.file_size, UnsupportedType(_SPECIAL))
            elif info.flag_bits & 0x1:
                yield _refusal(name, info.file_size, EncryptedFile(_ENCRYPTED))
            elif info.file_size > settings.max_file_mb * MIB:
                yield _refusal(name, info.file_size, _too_big(info.file_size, settings))
            else:
                yield RawMember(name, info.file_size, read=_zip_reader(archive, info))


def _zip_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return archive.read(info)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise CorruptFile(f"the archive member is damaged ({exc})") from None
        except NotImplementedError as exc:  # a compression method Python lacks
            raise UnsupportedType(f"the archive member is compressed unusually ({exc})") from None

    return read


def _tar_members(path: Path, settings: ParseSettings) -> Iterator[RawMember]:
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise CorruptFile(f"damaged tar archive ({exc})") from None
    with archive:
        try:
            infos = _tar_infos(archive)
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            raise CorruptFile(f"damaged tar archive ({exc})") from None
        total = sum(info.size for info in infos if info.isfile())
        _check_totals(path, len(infos), total, settings)
        for info in infos:
            if info.isdir():
                continue
            name, safe = safe_name(info.name)
            if _skipped(name):
                continue
            if not safe:
                yield _refusal(name, info.size, UnsupportedType(_LEAVES))
            elif info.issym() or info.islnk():
                yield _refusal(name, info.size, UnsupportedType(_LINK))
            elif not info.isfile():
                yield _refusal(name, info.size, UnsupportedType(_SPECIAL))
            elif info.size > settings.max_file_mb * MIB:
                yield _refusal(name, info.size, _too_big(info.size, settings))
            else:
                yield RawMember(name, info.size, read=_tar_reader(archive, info))


def _tar_infos(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    infos: list[tarfile.TarInfo] = []
    while (info := archive.next()) is not None:
        infos.append(info)
        if len(infos) > MAX_ZIP_MEMBERS:
            raise TooLarge(f"the archive holds over {MAX_ZIP_MEMBERS:,} members (bomb?)")
    return infos


def _tar_reader(archive: tarfile.TarFile, info: tarfile.TarInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            handle = archive.extractfile(info)
            return handle.read(info.size) if handle is not None else b""
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            raise CorruptFile(f"the archive member is damaged ({exc})") from None

    return read


def _check_totals(path: Path, count: int, total: int, settings: ParseSettings) -> None:
    if count > MAX_ZIP_MEMBERS:
        raise TooLarge(f"the archive holds {count:,} members (bomb?)")
    if total > settings.max_uncompressed_mb * MIB:
        raise TooLarge(
            f"the archive inflates to {total / MIB:,.0f} MiB, over the"
            f" {settings.max_uncompressed_mb:g} MiB limit (bomb?)"
        )
    ratio = total / max(path.stat().st_size, 1)
    if ratio > settings.max_compression_ratio:
        raise TooLarge(
            f"the archive inflates {ratio:,.0f}x, over the"
            f" {settings.max_compression_ratio:g}x limit (bomb?)"
        )


def _too_big(size: int, settings: ParseSettings) -> TooLarge:
    return TooLarge(
        f"the member is {size / MIB:.1f} MiB, over the {settings.max_file_mb:g} MiB limit"
    )


_LEAVES = "the member's path leaves the archive (absolute or '..'): refused"
_LINK = "a link inside an archive is never followed: refused"
_SPECIAL = "a device, FIFO or other special member: refused"
_ENCRYPTED = "the archive member is password-protected (passwords are never guessed)"
