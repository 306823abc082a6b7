"""Cross-process locks in the data dir that a crash cannot leave stuck.

``flock`` is released by the kernel when its holder dies, so a dead holder's lock is
simply taken; the holder's pid is written in the file for humans and status pages.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol


class LockBusy(Exception):
    """Another live process holds the lock (``holder`` says who, when known)."""

    def __init__(self, name: str | Path, holder: str) -> None:
        label = name.name if isinstance(name, Path) else name
        super().__init__(f"{label} is held by {holder or 'another process'}")
        self.holder = holder


class Lock(Protocol):
    """An exclusive lock that its holder's death releases: ``FileLock`` (one host) or
    ``ingest.db.advisory.AdvisoryLock`` (PostgreSQL, every host)."""

    def acquire(self, timeout: float | None = None) -> Lock: ...
    def release(self) -> None: ...
    def holder(self) -> str: ...
    def __enter__(self) -> Lock: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class FileLock:
    """An exclusive advisory lock on ``path``; ``acquire(timeout=0)`` fails fast when busy."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float | None = None) -> FileLock:
        """Take the lock, waiting up to ``timeout`` seconds (None: forever)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    holder = self.holder()
                    os.close(fd)
                    raise LockBusy(self.path, holder) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid={os.getpid()}\n".encode())
        self._fd = fd
        return self

    def busy(self) -> bool:
        """Whether another holder has the lock now, without taking it: a shared ``flock``
        probe on a descriptor of its own, dropped at once (so it never blocks a holder)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the probe's shared lock
        return False

    def holder(self) -> str:
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def collection_lock_name(collection: str) -> str:
    """The name of the lock every writer of ``collection`` holds (``Database.lock``)."""
    return f"collection-{collection}"
