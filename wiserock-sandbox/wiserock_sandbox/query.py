"""PostgREST's read query: `select`, `order`, `limit`/`offset`, comparison filters and `or`/`and` trees.

Comparisons follow the column's PostgreSQL type (schema.sort_key). Logic trees follow the
grammar of PostgREST's QueryParams.hs: `or=(a.gt.1,and(a.eq.1,b.gt."x,y"))`, where a value
inside a tree ends at the next `,` or `)` unless it is double-quoted, and inside quotes a
backslash takes the next character literally.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import typing as t

from wiserock_sandbox.errors import postgrest_error
from wiserock_sandbox.schema import operand_key, sort_key

if t.TYPE_CHECKING:
    from wiserock_sandbox.schema import Column, Row, TableDef

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

    def apply(self, table: TableDef, rows: list[Row], index: KeyIndex | None) -> Selection:
        """The rows that match, in the asked order. `index` (the sort keys of the primary key, in
        row order, which is key order) turns bounds on the key's first column into a bisect, and
        an order by the key (ascending or descending) into the stored order or its reverse."""
        conditions: list[Filter | Tree] = [*self.filters, *self.trees]
        tests = {id(item): _compile(table, item) for item in conditions}  # every operand is read even with no rows
        low, high = 0, len(rows)
        if index is not None:
            for item in list(conditions):
                start, end, exact = _key_range(index, item, len(rows))
                low, high = max(low, start), min(high, end)
                if exact:
                    conditions.remove(item)  # the bisect is the whole test
        test = _all_of([tests[id(item)] for item in conditions])
        direction = _stored_direction(self.order, index)
        if direction is not None:
            return Selection(rows, low, max(low, high), descending=direction, test=test)
        selected = rows[low:high] if test is None else [row for row in rows[low:high] if test(row)]
        if not self.order:
            # PostgreSQL gives no order without ORDER BY: a client that forgets it must notice.
            selected = sorted(selected, key=lambda row: hash(repr(row)))
        for column, descending in reversed(self.order):
            definition = table.column(column)
            selected = sorted(selected, reverse=descending, key=lambda row, c=definition: (
                row[c.name] is None, sort_key(c, row[c.name]) if row[c.name] is not None else 0))
        return Selection(selected, 0, len(selected))

    def project(self, rows: list[Row]) -> list[Row]:
        if self.select is None:
            return rows
        return [{column: row[column] for column in self.select} for row in rows]


@dataclasses.dataclass(frozen=True)
class KeyIndex:
    """The primary key's columns and, for every stored row (stored in key order), the sort key of
    its first column: what a bisect needs."""

    columns: tuple[Column, ...]
    firsts: list[t.Any]


class Selection:
    """The rows a query selects, in its order: `rows[start:end]` (reversed when `descending`) that
    pass `test`. Windows are cut without copying the rest, and a window of filtered rows stops
    looking once it is full, so that a page of a large table costs about a page's work."""

    def __init__(self, rows: list[Row], start: int, end: int, *, descending: bool = False,
                 test: t.Callable[[Row], bool] | None = None) -> None:
        self.rows, self.start, self.end, self.descending, self.test = rows, start, end, descending, test
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            span = self.end - self.start
            self._count = span if self.test is None else sum(1 for row in self._ordered() if self.test(row))
        return self._count

    def window(self, lower: int, upper: int) -> list[Row]:
        """The selected rows at positions lower..upper-1."""
        if upper <= lower:
            return []
        if self.test is None:
            if self.descending:
                first, last = self.end - lower, max(self.end - upper, self.start)
                return self.rows[last:first][::-1] if first > last else []
            return self.rows[self.start + lower:min(self.start + upper, self.end)]
        found: list[Row] = []
        skip = lower
        for row in self._ordered():
            if self.test(row):
                if skip:
                    skip -= 1
                    continue
                found.append(row)
                if len(found) == upper - lower:
                    break
        return found

    def _ordered(self) -> t.Iterator[Row]:
        if self.descending:
            return (self.rows[position] for position in range(self.end - 1, self.start - 1, -1))
        return itertools.islice(self.rows, self.start, self.end)


def _stored_direction(order: list[tuple[str, bool]], index: KeyIndex | None) -> bool | None:
    """Whether the stored (key) order is the asked order (False), its reverse (True), or neither (None):
    an order by the key's columns, or a prefix of them, all one way (terms after the whole key
    change nothing, the key being unique)."""
    if index is None or not order:
        return None
    names = [column.name for column in index.columns]
    shared = min(len(order), len(names))
    directions = {descending for _, descending in order[:shared]}
    if [name for name, _ in order[:shared]] != names[:shared] or len(directions) != 1:
        return None
    return directions.pop()


def _key_range(index: KeyIndex, item: Filter | Tree, size: int) -> tuple[int, int, bool]:
    """Positions [start, end) that hold every row `item` may match, found by bisecting on the key's
    first column, and whether exactly those rows match it."""
    if isinstance(item, Tree):
        parts = [_key_range(index, part, size) for part in item.items]
        if item.any_of:
            found = [(start, end) for start, end, _ in parts if start < end]
            if not found:
                return 0, 0, True
            return min(start for start, _ in found), max(end for _, end in found), len(parts) == 1 and parts[0][2]
        return max(start for start, _, _ in parts), min(end for _, end, _ in parts), all(exact for *_, exact in parts)
    first = index.columns[0]
    if item.column != first.name or item.operator == "neq":
        return 0, size, False
    bound = operand_key(first, item.operand)
    start, end = 0, size
    if item.operator in {"gt", "gte", "eq"}:
        start = (bisect.bisect_right if item.operator == "gt" else bisect.bisect_left)(index.firsts, bound)
    if item.operator in {"lt", "lte", "eq"}:
        end = (bisect.bisect_left if item.operator == "lt" else bisect.bisect_right)(index.firsts, bound)
    return start, max(start, end), True


def _all_of(tests: list[t.Callable[[Row], bool]]) -> t.Callable[[Row], bool] | None:
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda row: all(test(row) for test in tests)


def _compile(table: TableDef, item: Filter | Tree) -> t.Callable[[Row], bool]:
    """A test of one row, with the operand read as the column's type once, not once per row."""
    if isinstance(item, Tree):
        parts = [_compile(table, part) for part in item.items]
        if item.any_of:
            return lambda row: any(part(row) for part in parts)
        return lambda row: all(part(row) for part in parts)
    column = table.column(item.column)
    operand, compare, name = operand_key(column, item.operand), OPERATORS[item.operator], column.name

    def test(row: Row) -> bool:
        value = row[name]
        return value is not None and compare(sort_key(column, value), operand)  # NULL compares to nothing

    return test
