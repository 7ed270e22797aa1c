"""PostgREST's read query: `select`, `order`, `limit`/`offset` and the comparison filters."""

from __future__ import annotations

import bisect
import dataclasses
import typing as t

from wiserock_sandbox.errors import postgrest_error

if t.TYPE_CHECKING:
    from wiserock_sandbox.data import Row

FILTER_OPERATORS: dict[str, t.Callable[[t.Any, t.Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


@dataclasses.dataclass
class Query:
    select: list[str] | None
    order: list[tuple[str, bool]]
    filters: list[tuple[str, str, str]]  # column, operator, operand; several on one column are ANDed
    offset: int
    limit: int | None

    @classmethod
    def parse(cls, table: str, params: list[tuple[str, str]], columns: list[str]) -> Query:
        select, order, filters, offset, limit = None, [], [], 0, None
        for key, value in params:
            if key == "select":
                select = None if value.strip() == "*" else [c.strip() for c in value.split(",")]
            elif key == "order":
                for term in value.split(","):
                    column, _, direction = term.partition(".")
                    order.append((column, direction.split(".")[0] == "desc"))
            elif key in {"offset", "limit"}:
                if not value.isdigit():
                    raise postgrest_error(400, "PGRST100", f'"failed to parse {key} parameter ({value})"')
                offset, limit = (int(value), limit) if key == "offset" else (offset, int(value))
            elif key in {"apikey", "columns", "on_conflict"}:
                continue
            else:
                operator, _, operand = value.partition(".")
                if operator not in FILTER_OPERATORS:
                    raise postgrest_error(400, "PGRST100", f'"failed to parse filter ({value})"')
                filters.append((key, operator, operand))
        for column in [*(select or []), *(c for c, _ in order), *(c for c, _, _ in filters)]:
            if columns and column not in columns:
                raise postgrest_error(400, "42703", f"column {table}.{column} does not exist")
        return cls(select, order, filters, offset, limit)

    def apply(self, rows: list[Row], ids: list[int]) -> list[Row]:
        filters = list(self.filters)
        # Fast path for keyset paging: rows are kept sorted by id, so id bounds are a bisect.
        low, high = 0, len(rows)
        for column, operator, operand in self.filters:
            if column == "id" and operand.lstrip("-").isdigit() and operator != "neq":
                bound = int(operand)
                if operator in {"gt", "gte", "eq"}:
                    low = max(low, (bisect.bisect_right if operator == "gt" else bisect.bisect_left)(ids, bound))
                if operator in {"lt", "lte", "eq"}:
                    high = min(high, (bisect.bisect_left if operator == "lt" else bisect.bisect_right)(ids, bound))
                filters.remove((column, operator, operand))
        selected = rows[low:high]
        for column, operator, operand in filters:
            compare = FILTER_OPERATORS[operator]
            selected = [row for row in selected if row[column] is not None
                        and compare(row[column], _coerce(operand, row[column]))]
        if not self.order:
            # PostgreSQL gives no order without ORDER BY: a client that forgets it must notice.
            return sorted(selected, key=lambda row: (row["id"] * 2654435761) % 2**32)
        if self.order == [("id", False)]:
            return selected
        for column, descending in reversed(self.order):
            selected = sorted(selected, key=lambda row: (row[column] is None, row[column] if row[column] is not None else 0),
                              reverse=descending)
        return selected

    def project(self, rows: list[Row]) -> list[Row]:
        if self.select is None:
            return rows
        return [{column: row[column] for column in self.select} for row in rows]


def _coerce(operand: str, sample: t.Any) -> t.Any:
    if isinstance(sample, bool):
        return operand.lower() == "true"
    if isinstance(sample, int):
        return int(operand)
    return operand
