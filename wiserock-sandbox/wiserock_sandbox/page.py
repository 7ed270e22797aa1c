"""One read's answer, as PostgREST gives it: the query's rows cut by `limit`/`offset`, the `Range`
header and db-max-rows, the count `Prefer` asks for (`Content-Range`, 200/206/416), and the JSON
body, from rows rendered when stored where it can."""

from __future__ import annotations

import json
import re
import typing as t

from wiserock_sandbox.errors import postgrest_error
from wiserock_sandbox.query import Query
from wiserock_sandbox.schema import dumps, holds_exact_numbers

if t.TYPE_CHECKING:
    from wiserock_sandbox.schema import Row, TableDef
    from wiserock_sandbox.selection import KeyIndex

_RANGE_HEADER = re.compile(r"^(\d+)-(\d*)$")
_ENCODER = json.JSONEncoder(ensure_ascii=False)  # json.dumps would build one per call (per row)


def render_rows(definition: TableDef, rows: list[Row]) -> dict[int, bytes] | None:
    """Each row's JSON as UTF-8 (a str with one emoji takes 4 bytes a character), by id of the row
    object; None when a row holds a Decimal, which `dumps` renders at each read."""
    if holds_exact_numbers(definition, rows):
        return None
    return {id(row): _ENCODER.encode(row).encode() for row in rows}


def answer(definition: TableDef, rows: list[Row], index: KeyIndex | None, rendered: dict[int, bytes] | None,
           params: list[tuple[str, str]], range_header: str | None, prefer: str | None,
           max_rows: int) -> tuple[int, bytes, dict[str, str]]:
    """The status, the JSON body and the Content-Range of a read of these rows (in key order)."""
    query = Query.parse(definition, params)
    selected = query.apply(definition, rows, index)
    lower, upper = query.offset, (query.offset + query.limit - 1) if query.limit is not None else None
    if range_header:
        match = _RANGE_HEADER.match(range_header.strip())
        if match:  # other forms (such as items=0-9) are ignored, as PostgREST does
            first, last = int(match[1]), int(match[2]) if match[2] else None
            if last is not None and last < first:
                raise postgrest_error(416, "PGRST103", "Requested range not satisfiable",
                                      details="The lower boundary must be lower than or equal to the upper boundary")
            lower = max(lower, first)
            if last is not None:
                upper = last if upper is None else min(upper, last)
    capped = lower + max_rows - 1  # db-max-rows: silently intersected into every read
    upper = capped if upper is None else min(upper, capped)
    page = selected.window(lower, upper + 1)
    total = selected.count() if _counts(prefer) else None
    status = 200
    if total is not None:
        if lower > total:
            raise postgrest_error(416, "PGRST103", "Requested range not satisfiable",
                                  details=f"An offset of {lower} was requested, but there are only {total} rows.",
                                  headers={"Content-Range": f"*/{total}"})
        if len(page) < total:
            status = 206
    shown_total = "*" if total is None else str(total)
    content_range = (f"{lower}-{lower + len(page) - 1}/{shown_total}" if page and total != 0
                     else f"*/{shown_total}")
    if rendered is None:
        body = dumps(query.project(page)).encode()
    elif query.select is None:  # the stored rows themselves, each rendered once: as json.dumps renders the list
        body = b"[" + b", ".join([rendered[id(row)] for row in page]) + b"]"
    else:
        body = json.dumps(query.project(page), ensure_ascii=False).encode()
    return status, body, {"Content-Range": content_range}


def _counts(prefer: str | None) -> bool:
    """`Prefer: count=exact|planned|estimated`. The sandbox has no planner: every count is exact,
    which is what PostgREST's `estimated` also gives for small results."""
    return bool(prefer) and any(f"count={kind}" in prefer for kind in ("exact", "planned", "estimated"))
