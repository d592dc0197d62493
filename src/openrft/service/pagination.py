"""OpenAI's cursor pagination: `after` (the last id of the previous page), `limit`, `has_more`."""

from __future__ import annotations

from typing import Any, Callable

from openrft.service.errors import bad_request

MAX_LIMIT = 10_000


def page(items: list[Any], *, after: str | None, limit: int, id_of: Callable[[Any], str] = lambda x: x["id"],
         extra_ids: bool = False) -> dict:
    """The list object for one page of `items` (already in the list's order) after the id `after`.

    With `extra_ids`, `first_id` and `last_id` are added (the checkpoints and evals lists carry them).
    """
    if limit < 1 or limit > MAX_LIMIT:
        raise bad_request(f"Invalid 'limit': {limit} (expected 1 to {MAX_LIMIT}).", param="limit")
    start = 0
    if after:
        ids = [id_of(item) for item in items]
        if after not in ids:
            raise bad_request(f"Invalid 'after': no object with id '{after}' in this list.", param="after")
        start = ids.index(after) + 1
    data = items[start:start + limit]
    body = {"object": "list", "data": data, "has_more": start + limit < len(items)}
    if extra_ids:
        body["first_id"] = id_of(data[0]) if data else None
        body["last_id"] = id_of(data[-1]) if data else None
    return body
