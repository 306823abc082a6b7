"""Legacy Office files (.doc, .ppt, .xls, RTF pandoc cannot read) through LibreOffice headless.

``converted`` turns the file into its Office Open XML sibling (docx, pptx, xlsx) for
unstructured's partitioners. It runs in the parser worker (``ingest.parser_worker``), whose
timeout and memory cap cover it too, and adds its own: one ``soffice`` at a time on the
machine (a lock file), in its own session with its own throw-away profile and working
folder (a copy of the input under a neutral name), killed with its children past
``convert_timeout_s`` or above ``convert_memory_mb`` resident; the folder is removed
afterwards whatever happened. Without LibreOffice: ``converter_unavailable``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from ingest.errors import ConverterUnavailable, CorruptFile, ParseTimeout, TooLarge
from ingest.readers import CONVERTER_PACKAGE, soffice_path
from ingest.settings import ParseSettings

TARGETS = {"doc": "docx", "rtf": "docx", "ppt": "pptx", "xls": "xlsx"}
"""Legacy type -> the type LibreOffice converts it to."""
POLL_S = 0.1
MIB = 1024 * 1024
_NAMES = {"doc": "Word 97-2003 .doc", "ppt": "PowerPoint 97-2003 .ppt", "xls": "Excel 97-2003 .xls"}


def require_converter(kind: str) -> str:
    """The ``soffice`` binary; ``ConverterUnavailable`` naming the package when missing."""
    binary = soffice_path()
    if binary is None:
        what = _NAMES.get(kind, f".{kind}")
        raise ConverterUnavailable(
            f"a legacy {what} file needs LibreOffice to be read: install {CONVERTER_PACKAGE}"
            f" (or save it as .{TARGETS.get(kind, 'docx')})"
        )
    return binary


@contextlib.contextmanager
def converted(path: Path, kind: str, settings: ParseSettings) -> Iterator[Path]:
    """The file converted to ``TARGETS[kind]``, in a temporary folder removed on exit."""
    binary = require_converter(kind)
    target = TARGETS[kind]
    workdir = Path(tempfile.mkdtemp(prefix="soffice-"))
    try:
        source = workdir / f"input.{kind}"
        shutil.copyfile(path, source)
        outdir = workdir / "out"
        argv = [
            binary,
            f"-env:UserInstallation={(workdir / 'profile').as_uri()}",
            "--headless", "--invisible", "--nologo", "--norestore", "--nodefault",
            "--nolockcheck", "--convert-to", target, "--outdir", str(outdir), str(source),
        ]  # fmt: skip
        with _one_at_a_time():
            _run(argv, workdir, settings)
        result = outdir / f"input.{target}"
        if not result.is_file() or result.stat().st_size == 0:
            missing = _missing_component(binary, kind)
            if missing:
                raise ConverterUnavailable(
                    f"a legacy .{kind} file needs LibreOffice's {missing} package: install it"
                )
            raise CorruptFile(f"LibreOffice could not read this .{kind} file (damaged?)")
        yield result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


_COMPONENTS = {
    "doc": ("libswlo.so", "libreoffice-writer"),
    "rtf": ("libswlo.so", "libreoffice-writer"),
    "xls": ("libsclo.so", "libreoffice-calc"),
    "ppt": ("libsdlo.so", "libreoffice-impress"),
}


def _missing_component(binary: str, kind: str) -> str | None:
    """The Debian package of the LibreOffice module ``kind`` needs, when it is not installed
    (``libreoffice-core`` alone converts nothing; each of writer, calc, impress adds a type)."""
    library, package = _COMPONENTS[kind]
    program = Path(binary).resolve().parent
    if not (program / "soffice").exists() or (program / library).exists():
        return None  # not a Debian-style layout, or the module is there: the file is at fault
    return package


def _lock_path() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"  # noqa: S108  (a lock, not data)
    return Path(base) / f"inhouse-soffice-{os.getuid()}.lock"


@contextlib.contextmanager
def _one_at_a_time() -> Iterator[None]:
    with open(_lock_path(), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes (or we die)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(argv: list[str], workdir: Path, settings: ParseSettings) -> None:
    env = {**os.environ, "HOME": str(workdir), "TMPDIR": str(workdir), "SAL_USE_VCLPLUGIN": "svp"}
    process = subprocess.Popen(  # noqa: S603  (fixed argv, no shell)
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=workdir,
        start_new_session=True,
    )
    cap = settings.convert_memory_mb * MIB
    started = time.monotonic()
    try:
        while process.poll() is None:
            if time.monotonic() - started > settings.convert_timeout_s:
                raise ParseTimeout(
                    f"LibreOffice took longer than {settings.convert_timeout_s:g} s to convert"
                )
            rss = _tree_rss(process.pid)
            if rss > cap:
                raise TooLarge(
                    f"LibreOffice exceeded its memory cap ({rss / MIB:,.0f} MiB >"
                    f" {settings.convert_memory_mb:,} MiB)"
                )
            time.sleep(POLL_S)
    finally:
        if process.poll() is None:
            _kill_tree(process)


def _tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        total = root.memory_info().rss
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total
    except psutil.Error:
        return 0


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, 9)  # its own session: soffice.bin and helpers go with it
    process.wait(timeout=10)
