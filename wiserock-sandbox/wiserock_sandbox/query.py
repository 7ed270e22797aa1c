"""PostgREST's read query: `select`, `order`, `limit`/`offset`, comparison filters and `or`/`and` trees.

Comparisons follow the column's PostgreSQL type (schema.sort_key). Logic trees follow the
grammar of PostgREST's QueryParams.hs: `or=(a.gt.1,and(a.eq.1,b.gt."x,y"))`, where a value
inside a tree ends at the next `,` or `)` unless it is double-quoted, and inside quotes a
backslash takes the next character literally.
"""

from __future__ import annotations

import bisect
import dataclasses
import typing as t

from wiserock_sandbox.errors import postgrest_error
from wiserock_sandbox.schema import operand_key, sort_key

if t.TYPE_CHECKING:
    from wiserock_sandbox.schema import Row, TableDef

OPERATORS: dict[str, t.Callable[[t.Any, t.Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
RESERVED_PARAMS = frozenset({"apikey", "columns", "on_conflict"})


@dataclasses.dataclass(frozen=True)
class Filter:
    column: str
    operator: str
    operand: str


@dataclasses.dataclass(frozen=True)
class Tree:
    """`or(...)` / `and(...)` of filters and trees."""

    any_of: bool
    items: tuple[Filter | Tree, ...]


def _parse_error(text: str) -> Exception:
    return postgrest_error(400, "PGRST100", f'"failed to parse logic tree ({text})"')


class _TreeParser:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def items(self) -> tuple[Filter | Tree, ...]:
        """`(item,item,...)`"""
        self.expect("(")
        found = [self.item()]
        while self.peek() == ",":
            self.pos += 1
            found.append(self.item())
        self.expect(")")
        return tuple(found)

    def item(self) -> Filter | Tree:
        for word, any_of in (("or(", True), ("and(", False)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word) - 1
                return Tree(any_of, self.items())
        column = self.until(".")
        self.expect(".")
        operator = self.until(".")
        self.expect(".")
        return Filter(column, operator, self.value())

    def value(self) -> str:
        if self.peek() == '"':
            self.pos += 1
            chars = []
            while self.peek() not in {'"', ""}:
                if self.peek() == "\\":
                    self.pos += 1
                chars.append(self.peek())
                self.pos += 1
            self.expect('"')
            if self.peek() not in {",", ")", ""}:
                raise _parse_error(self.text)
            return "".join(chars)
        return self.until(",)")

    def until(self, stops: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        return self.text[start:self.pos]

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise _parse_error(self.text)
        self.pos += 1


@dataclasses.dataclass
class Query:
    select: list[str] | None
    order: list[tuple[str, bool]]
    filters: list[Filter]  # ANDed, as several query parameters are
    trees: list[Tree]
    offset: int
    limit: int | None

    @classmethod
    def parse(cls, table: TableDef, params: list[tuple[str, str]]) -> Query:
        select, order, filters, trees, offset, limit = None, [], [], [], 0, None
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
            elif key in {"or", "and"}:
                parser = _TreeParser(value)
                trees.append(Tree(key == "or", parser.items()))
                if parser.pos != len(value):
                    raise _parse_error(value)
            elif key not in RESERVED_PARAMS:
                operator, _, operand = value.partition(".")
                filters.append(Filter(key, operator, operand))
        query = cls(select, order, filters, trees, offset, limit)
        for column in query.columns():
            table.column(column)  # PostgreSQL's 42703 for a column the table does not have
        for item in query.all_filters():
            if item.operator not in OPERATORS:
                raise postgrest_error(400, "PGRST100", f'"failed to parse filter ({item.operator}.{item.operand})"')
        return query

    def all_filters(self) -> t.Iterator[Filter]:
        pending: list[Filter | Tree] = [*self.filters, *self.trees]
        while pending:
            item = pending.pop()
            if isinstance(item, Tree):
                pending += item.items
            else:
                yield item

    def columns(self) -> list[str]:
        return [*(self.select or []), *(c for c, _ in self.order), *(f.column for f in self.all_filters())]

    def apply(self, table: TableDef, rows: list[Row], keys: list[t.Any] | None) -> list[Row]:
        """The rows that match, in the asked order. `keys` (the sort keys of a single-column
        integer primary key, in row order) lets bounds on that key be a bisect."""
        filters = list(self.filters)
        low, high = 0, len(rows)
        if keys is not None:
            key = table.primary_key[0]
            for item in self.filters:
                if item.column == key and item.operator != "neq":
                    bound = operand_key(table.column(key), item.operand)
                    if item.operator in {"gt", "gte", "eq"}:
                        low = max(low, (bisect.bisect_right if item.operator == "gt" else bisect.bisect_left)(keys, bound))
                    if item.operator in {"lt", "lte", "eq"}:
                        high = min(high, (bisect.bisect_left if item.operator == "lt" else bisect.bisect_right)(keys, bound))
                    filters.remove(item)
        selected = rows[low:high]
        conditions = [*filters, *self.trees]
        if conditions:
            selected = [row for row in selected if all(_matches(table, row, item) for item in conditions)]
        if not self.order:
            # PostgreSQL gives no order without ORDER BY: a client that forgets it must notice.
            return sorted(selected, key=lambda row: hash(repr(row)))
        if keys is not None and self.order == [(table.primary_key[0], False)]:
            return selected  # stored in this order
        for column, descending in reversed(self.order):
            definition = table.column(column)
            selected = sorted(selected, reverse=descending, key=lambda row, c=definition: (
                row[c.name] is None, sort_key(c, row[c.name]) if row[c.name] is not None else 0))
        return selected

    def project(self, rows: list[Row]) -> list[Row]:
        if self.select is None:
            return rows
        return [{column: row[column] for column in self.select} for row in rows]


def _matches(table: TableDef, row: Row, item: Filter | Tree) -> bool:
    if isinstance(item, Tree):
        results = (_matches(table, row, part) for part in item.items)
        return any(results) if item.any_of else all(results)
    value = row[item.column]
    if value is None:
        return False  # NULL compares to nothing
    column = table.column(item.column)
    return OPERATORS[item.operator](sort_key(column, value), operand_key(column, item.operand))
