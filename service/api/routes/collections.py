"""``GET /v1/collections``: the collections the caller may read, with counts."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import QueryCaller, RetrieverDep
from service.api.schemas import CollectionModel, CollectionsResponse

router = APIRouter(tags=["collections"])


@router.get("/v1/collections", response_model=CollectionsResponse)
async def list_collections(
    caller: QueryCaller,
    retriever: RetrieverDep,
) -> CollectionsResponse:
    """Collections with indexed documents, chunks, failures and pending documents."""
    names = caller.readable(await retriever.known_collections())
    infos = await retriever.describe(names)
    return CollectionsResponse(
        collections=[CollectionModel.model_validate(i, from_attributes=True) for i in infos]
    )
