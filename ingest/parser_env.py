"""Set-up of parser processes: keep torch out of them.

spaCy's thinc imports torch whenever it is installed, for optional torch layers, and
unstructured's text path imports spaCy, so every parser process would carry about 180 MB
of torch that no partitioner Inhouse calls uses (fast PDF text, OCR without table-structure
inference, office, mail and markup formats). With ``torch`` marked absent in
``sys.modules``, thinc takes torch as not installed. Parser processes import this module
first (the fork server preloads it before the partitioners); nothing else may import it.
"""

from __future__ import annotations

import sys


def keep_torch_out() -> None:
    """Make ``import torch`` fail in this process unless torch is already loaded."""
    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]


keep_torch_out()
