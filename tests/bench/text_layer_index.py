"""A quick index of PDFs from their text layer (pypdf), for benchmarks on a busy machine.

``inhouse ingest`` parses PDFs with unstructured (layout, tables): the product path, but
minutes per 10-Q filing on two loaded cores. This reads each page's text layer instead,
one element per paragraph, and then does what ingestion does: ``ingest.chunk.Chunker``
with the configured chunk settings, the service's encoder, ``ChromaIndex.upsert`` and the
manifest. Chunks differ from unstructured's (no table structure), so figures measured on
this index are for comparing answer strategies, not the product's retrieval.

    INHOUSE_DATA_DIR=/tmp/sec python -m tests.bench.text_layer_index \\
        /work/shared/data/sec10q/docs --collection sec10q
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import ingest  # noqa: F401  (zero-egress environment first)
from ingest.chunk import Chunker
from ingest.documents import ParsedDocument, ParsedElement
from ingest.embed import Embedder
from ingest.index import (
    META_CHUNK_HASH,
    META_COLLECTION,
    META_DOC_HASH,
    META_DOCUMENT_ID,
    META_FILE_TYPE,
    META_PAGE_END,
    META_PAGE_START,
    META_POSITION,
    META_SOURCE,
    META_TITLE,
    ChromaIndex,
    StoredChunk,
    chunk_hash,
    chunk_id,
    document_id,
    make_chroma_client,
)
from ingest.manifest import Manifest
from ingest.settings import IngestSettings


def parse(path: Path) -> ParsedDocument:
    from pypdf import PdfReader

    elements = []
    reader = PdfReader(path)
    for number, page in enumerate(reader.pages, 1):
        text = page.extract_text() or ""
        for para in re.split(r"\n\s*\n", text):
            if para.strip():
                elements.append(ParsedElement(para.strip(), "NarrativeText", number))
    return ParsedDocument("pdf", tuple(elements), len(reader.pages), path.stem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--collection", default="sec10q")
    args = parser.parse_args()
    settings = IngestSettings()
    embedder = Embedder(settings.embed)
    index = ChromaIndex(make_chroma_client(settings), embedder.info)
    manifest = Manifest.open(settings)
    chunker = Chunker(settings.chunk, embedder.tokenize, embedder.max_tokens)
    root = str(args.folder.resolve())
    for path in sorted(args.folder.glob("*.pdf")):
        started = time.monotonic()
        doc = parse(path)
        chunks = chunker.chunk(doc, path.stem)
        doc_id = document_id(args.collection, root, path.name)
        doc_hash = chunk_hash("\n".join(c.text for c in chunks))
        stored = [
            StoredChunk(
                id=chunk_id(doc_id, c.position, chunk_hash(c.text)),
                text=c.body or c.text,
                metadata={
                    META_COLLECTION: args.collection,
                    META_DOCUMENT_ID: doc_id,
                    META_SOURCE: path.name,
                    META_TITLE: path.stem,
                    META_FILE_TYPE: "pdf",
                    META_PAGE_START: c.pages[0] if c.pages else 0,
                    META_PAGE_END: c.pages[-1] if c.pages else 0,
                    META_POSITION: c.position,
                    META_CHUNK_HASH: chunk_hash(c.text),
                    META_DOC_HASH: doc_hash,
                },
            )
            for c in chunks
        ]
        manifest.begin_document(
            doc_id=doc_id,
            collection=args.collection,
            root=root,
            path=path.name,
            size=path.stat().st_size,
            mtime_ns=0,
            pending_hash=doc_hash,
            embedder=embedder.info.name,
        )
        index.upsert(args.collection, stored, embedder.encode([c.text for c in chunks]))
        manifest.finish_indexed(
            doc_id,
            content_hash=doc_hash,
            chunk_count=len(stored),
            file_type="pdf",
            title=path.stem,
            page_count=doc.page_count,
        )
        print(f"{path.name}: {len(stored)} chunks in {time.monotonic() - started:.0f}s")
    manifest.close()


if __name__ == "__main__":
    main()
