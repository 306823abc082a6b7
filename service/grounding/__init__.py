"""Grounded answers: extracts quoted from the passages, and answers checked against them.

``extract`` picks the sentences that answer a question best (no model involved);
``check_answer`` looks up an answer's figures and quotes in the passages it cites;
``figures`` finds and normalises the figures both rely on.
"""

from __future__ import annotations

from service.grounding.check import Grounding, Unsupported, check_answer
from service.grounding.extract import Extract, Passage, Quote, extract

__all__ = [
    "Extract",
    "Grounding",
    "Passage",
    "Quote",
    "Unsupported",
    "check_answer",
    "extract",
]
