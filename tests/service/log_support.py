"""Capturing the fully formatted output of every logger in a test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TypeVar

H = TypeVar("H", bound=logging.Handler)


def capture_all_logs(handler: H) -> Iterator[H]:
    """``handler`` on the root logger and every logger that does not propagate, at DEBUG,
    while the generator is suspended (use with ``yield from`` in a fixture)."""
    root = logging.getLogger()
    loggers = [root] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    level = root.level
    root.setLevel(logging.DEBUG)
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        root.setLevel(level)
