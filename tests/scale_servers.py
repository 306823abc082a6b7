"""Real servers for the scale-out tests and benchmark: PostgreSQL (Debian's binaries, initdb
in a temporary folder) and the ``inhouse`` processes run against it.

``chroma run`` is ``tests.service.test_chroma_server_mode.ChromaServer``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_available() -> bool:
    return (PG_BIN / "initdb").exists() and shutil.which("runuser") is not None


class PostgresServer:
    """A throwaway PostgreSQL cluster on a loopback port (trust auth, fsync off), in a folder
    of its own under the system temp dir (pytest's are closed to the postgres user)."""

    def __init__(self, port: int | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="inhouse-pg-"))
        self.port = port or free_port()
        self.data = self.folder / "pgdata"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        if not self.data.exists():
            subprocess.run(
                self._as_postgres(
                    str(PG_BIN / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres"
                ),
                check=True,
                capture_output=True,
            )
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            self._as_postgres(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.folder / "log"),
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``start`` again keeps the data: a database restart)."""
        subprocess.run(
            self._as_postgres(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"
            ),
            check=False,
            capture_output=True,
        )

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f}s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """SIGTERM the process group, then SIGKILL it if it lingers; returns the exit code."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return int(proc.returncode)
