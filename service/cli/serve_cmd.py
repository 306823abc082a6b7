"""``inhouse serve [--host 127.0.0.1] [--port 8000]``: run the query service with uvicorn."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.output import fail_usage


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the query service (HTTP API and web chat)",
        description="Serve the HTTP API (/v1/query, /v1/chat/completions, ...) and the web"
        " chat. Settings come from INHOUSE_* variables and OLLAMA_HOST. The encoder loads in"
        " the background at start; /readyz says when questions can be answered.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="application log level",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        return fail_usage(f"--port must be between 1 and 65535, not {args.port}")
    from ingest.settings import load_settings
    from service.cli.common import configure_logging
    from service.settings import ServiceSettings

    settings = load_settings(ServiceSettings)
    configure_logging(args.log_level.upper())

    import uvicorn

    from service.api.main import create_app

    app = create_app(settings, warm_up=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,  # one format for everything: the root logger configured above
        log_level=args.log_level,
        access_log=False,  # raw request paths; the audit log records every request instead
        proxy_headers=False,  # X-Forwarded-For: only from INHOUSE_SECURITY__TRUSTED_PROXIES
        timeout_graceful_shutdown=10,
    )
    return 0
