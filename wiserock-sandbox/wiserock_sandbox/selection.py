"""What a read selects, cut into pages cheaply: the stored rows (in primary-key order) between two
positions, in either direction, optionally filtered, and the key index that finds those positions."""

from __future__ import annotations

import dataclasses
import itertools
import typing as t

if t.TYPE_CHECKING:
    from wiserock_sandbox.schema import Column, Row


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


def stored_direction(order: list[tuple[str, bool]], index: KeyIndex | None) -> bool | None:
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
