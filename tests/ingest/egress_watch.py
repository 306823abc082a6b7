"""Egress watcher, installed as ``sitecustomize`` in every Python process of a CLI run.

test_egress.py copies this file to a folder put first on the children's PYTHONPATH; the hooks
are installed only when it runs as ``sitecustomize``. Each process logs (JSON lines to
``$EGRESS_LOG``):
- ``start`` (a new interpreter) and ``fork`` (a forked child, e.g. a parser worker), with
  ``missing``: the zero-egress variables absent from the environment at that moment;
- ``import`` of each library that can phone home, with ``missing`` just before it loads;
- ``connect``, ``send`` (UDP sendto/sendmsg) and ``dns`` (getaddrinfo, gethostbyname[_ex],
  gethostbyaddr) to anything but loopback, which are then refused.
The expected variables are listed here, not imported from ingest/offline.py, so a regression
there shows up as ``missing`` entries.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

EXPECTED = {
    "DO_NOT_TRACK": "true",
    "SCARF_NO_ANALYTICS": "true",
    "ANONYMIZED_TELEMETRY": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ORT_DISABLE_TELEMETRY": "1",
}
WATCHED = {
    "chromadb",
    "huggingface_hub",
    "llama_index",
    "onnxruntime",
    "posthog",
    "sentence_transformers",
    "transformers",
    "unstructured",
    "unstructured_inference",
}
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_seen: set[str] = set()


def missing() -> list[str]:
    return sorted(k for k, v in EXPECTED.items() if os.environ.get(k) != v)


def record(event: str, **fields: Any) -> None:
    line = {"pid": os.getpid(), "ppid": os.getppid(), "event": event, **fields}
    with open(os.environ["EGRESS_LOG"], "a") as fh:
        fh.write(json.dumps(line, default=repr) + "\n")


def is_loopback(host: object) -> bool:
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    return name in _LOOPBACK_NAMES or name.startswith("127.") or name in ("::1", "0.0.0.0", "")


def _inet(sock: socket.socket) -> bool:
    return sock.family in (socket.AF_INET, socket.AF_INET6)


class _ImportWatch:
    """A meta-path finder that only notes the first import of each watched library."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        top = name.partition(".")[0]
        if top in WATCHED and top not in _seen:
            _seen.add(top)
            record("import", module=top, missing=missing())
        return None


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sendto = socket.socket.sendto
_sendmsg = socket.socket.sendmsg
_lookups = {
    name: getattr(socket, name)
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr")
}


def connect(self: socket.socket, address: Any) -> None:
    if _inet(self) and not is_loopback(address[0]):
        record("connect", target=address, type=int(self.type))
        raise OSError("egress blocked by test guard")
    return _connect(self, address)


def connect_ex(self: socket.socket, address: Any) -> int:
    if _inet(self) and not is_loopback(address[0]):
        record("connect", target=address, type=int(self.type))
        return 111
    return _connect_ex(self, address)


def sendto(self: socket.socket, data: Any, *args: Any) -> int:
    address = args[-1]
    if _inet(self) and not is_loopback(address[0]):
        record("send", target=address, type=int(self.type))
        raise OSError("egress blocked by test guard")
    return _sendto(self, data, *args)


def sendmsg(self: socket.socket, buffers: Any, *args: Any) -> int:
    address = args[2] if len(args) > 2 else None
    if address is not None and _inet(self) and not is_loopback(address[0]):
        record("send", target=address, type=int(self.type))
        raise OSError("egress blocked by test guard")
    return _sendmsg(self, buffers, *args)


def _lookup(name: str) -> Any:
    real = _lookups[name]

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_loopback(host):
            record("dns", target=host, call=name)
            raise socket.gaierror(f"{name} blocked by test guard")
        return real(host, *args, **kwargs)

    return lookup


def install() -> None:
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign,assignment]
    socket.socket.sendmsg = sendmsg  # type: ignore[method-assign]
    for name in _lookups:
        setattr(socket, name, _lookup(name))
    sys.meta_path.insert(0, _ImportWatch())  # type: ignore[arg-type]
    os.register_at_fork(after_in_child=lambda: record("fork", missing=missing()))
    record("start", argv=sys.argv, missing=missing())


if __name__ == "sitecustomize":  # imported by the tests for EXPECTED only: no hooks there
    install()
