"""A second local encoder for re-embed tests, made offline from the packaged all-MiniLM-L6-v2:
the same network followed by a fixed random 384 -> 256 projection and a normaliser. Its
vectors differ from MiniLM's (another dimension, another name), yet a random projection
keeps cosine neighbourhoods, so search with it still finds the right passages."""

from __future__ import annotations

from pathlib import Path

DIMENSION = 256


def make_projected_encoder(folder: Path, seed: int = 7) -> Path:
    """Save the second encoder in ``folder`` (its name is the folder's name)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    from ingest.embed import default_model_path

    model = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)
    torch.manual_seed(seed)
    model.append(
        Dense(
            in_features=384,
            out_features=DIMENSION,
            bias=False,
            activation_function=torch.nn.Identity(),
        )
    )
    model.append(Normalize())
    model.save(str(folder))
    return folder


DOCS = {
    "vacation.md": "# Vacation policy\n\nEmployees receive 27 days of paid vacation per year."
    " Up to five unused days carry over to the next year.\n",
    "parking.txt": "Parking. The underground garage opens at 6:30 and closes at 22:00 on"
    " weekdays. Visitors park on level minus two.\n",
    "expenses.md": "# Travel expenses\n\nMeals while travelling are reimbursed up to 45 euros"
    " per day. Hotels need a receipt.\n",
    "laptops.md": "# Laptops\n\nEvery engineer gets a laptop with 32 GB of memory, replaced"
    " every three years by the IT service desk.\n",
    "codes.md": "# Forms\n\nForm HR-2231 requests parking; form HR-2232 requests vacation.\n",
}

QUESTIONS = {
    "How many vacation days do I get?": "vacation.md",
    "When does the garage open?": "parking.txt",
    "meal allowance on business trips": "expenses.md",
    "how often are laptops replaced": "laptops.md",
}


def write_docs(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (root / name).write_text(text)
    return root
