"""Grounded answers: extracts quoted from the passages, and answers checked against them.

``extract`` picks the sentences that answer a question best (no model involved);
``check_answer`` looks up an answer's figures and quotes in the passages it cites;
``attribute`` cites an answer's uncited sentences by the passages that support them and
drops citations to no passage; ``figures`` finds and normalises the figures all rely on.
"""

from __future__ import annotations

from service.grounding.attribute import Attribution, attribute
from service.grounding.check import Attributed, Grounding, Unsupported, check_answer
from service.grounding.extract import Extract, Passage, Quote, extract

__all__ = [
    "Attributed",
    "Attribution",
    "Extract",
    "Grounding",
    "Passage",
    "Quote",
    "Unsupported",
    "attribute",
    "check_answer",
    "extract",
]
