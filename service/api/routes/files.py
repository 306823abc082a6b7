"""Document files: download an original, upload new documents into a collection.

* ``GET /v1/documents/{document_id}/file``: the original file (scope ``query`` on its
  collection; a document the key may not read is a 404 like a missing one). PDFs are
  sent ``inline`` (the web chat opens them at the cited page), everything else as an
  attachment under a sandboxing CSP.
* ``POST /v1/collections/{name}/documents``: multipart ``files``; scope ``ingest`` on the
  collection. Each file is stored under ``<data dir>/uploads/<name>/`` and indexed;
  the answer lists every file as indexed, unchanged or failed with a reason code.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest.errors import FileRejected
from service.api.deps import MIB, get_originals, get_uploads, require_caller
from service.api.schemas import ErrorResponse
from service.caller import SCOPE_INGEST, Caller, require
from service.errors import BadRequest
from service.originals import Originals
from service.uploads import UploadResult, UploadService, rejected

UPLOAD_REQUEST_CEILING = 64 * 1024 * MIB
"""Lifts the app-wide JSON body limit for this one route; the configured upload limit
(``INHOUSE_LIMITS__UPLOAD_MB``) is enforced per request by the body-limit middleware and
per file while saving."""
FILE_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
PDF_CSP = "default-src 'none'; frame-ancestors 'none'"

router = APIRouter(tags=["documents"])

CallerDep = Annotated[Caller, Depends(require_caller)]
OriginalsDep = Annotated[Originals, Depends(get_originals)]
UploadsDep = Annotated[UploadService, Depends(get_uploads)]


class UploadedFile(BaseModel):
    filename: str = Field(description="The name the file was stored under (sanitised).")
    status: Literal["indexed", "unchanged", "failed"]
    document_id: str | None = None
    code: str | None = Field(None, description="Why it failed, e.g. unsupported_type, too_large.")
    message: str | None = None
    chunks: int = Field(0, description="Passages indexed.")
    pages: int | None = None
    bytes: int = 0

    @classmethod
    def of(cls, result: UploadResult) -> UploadedFile:
        status = result.status if result.status in ("indexed", "unchanged") else "failed"
        return cls(
            filename=result.filename,
            status=status,
            document_id=result.document_id,
            code=result.code,
            message=result.message,
            chunks=result.chunks,
            pages=result.pages,
            bytes=result.bytes,
        )


class UploadResponse(BaseModel):
    collection: str
    files: list[UploadedFile]


@router.get(
    "/v1/documents/{document_id}/file",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The original file."},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
    },
)
async def document_file(document_id: str, caller: CallerDep, originals: OriginalsDep) -> Response:
    """The original file of an indexed document (an archive member or an e-mail attachment
    is read from its container)."""
    original = await run_in_threadpool(originals.find, caller, document_id)
    disposition = "inline" if original.inline else "attachment"
    headers = {
        "Content-Security-Policy": PDF_CSP if original.inline else FILE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    if original.data is not None:
        headers["Content-Disposition"] = (
            f"{disposition}; filename*=utf-8''{quote(original.filename, safe='')}"
        )
        return Response(original.data, media_type=original.media_type, headers=headers)
    return FileResponse(
        original.path,
        media_type=original.media_type,
        filename=original.filename,
        content_disposition_type=disposition,
        headers=headers,
    )


@router.post(
    "/v1/collections/{name}/documents",
    response_model=UploadResponse,
    max_body_size=UPLOAD_REQUEST_CEILING,
    responses={
        403: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)
async def upload_documents(
    name: str,
    caller: CallerDep,
    uploads: UploadsDep,
    files: Annotated[list[UploadFile], File(description="One or more documents.")],
) -> UploadResponse:
    """Store and index documents in a collection (scope ``ingest`` on it)."""
    require(caller, SCOPE_INGEST, name)
    results: list[UploadResult | None] = []
    stored = []
    for upload in files:
        filename = upload.filename or ""
        try:
            target = await run_in_threadpool(uploads.target, name, filename)
            await run_in_threadpool(uploads.save, upload.file, target)
        except (BadRequest, FileRejected) as exc:
            if isinstance(exc, BadRequest) and exc.detail.get("code") != "invalid_filename":
                raise  # a bad collection name: the whole request is wrong
            results.append(rejected(filename, exc))
            continue
        finally:
            await upload.close()
        stored.append((len(results), target))
        results.append(None)
    if stored:
        # Not cancellable: a client that leaves mid-run must not leave a half-indexed file.
        indexed = await anyio.to_thread.run_sync(uploads.index, name, [t for _, t in stored])
        for position, target in stored:
            results[position] = indexed[target]
    return UploadResponse(
        collection=name, files=[UploadedFile.of(r) for r in results if r is not None]
    )
