"""Keyset paging filters for any orderable key, one column or several, as PostgREST reads them.

One column: `order=k.asc&k=gt.<last>`. Several: `order=a.asc,b.asc&or=(a.gt."x",and(a.eq."x",b.gt."y"))`.
A value in a simple filter is read to the end of the parameter, as written; in an `or=(...)`
tree a value ends at the next `,` or `)` unless it is double-quoted, and inside the quotes a
backslash takes the next character literally (PostgREST's pLogicSingleVal and pQuotedValue), so
every tree value is quoted, its `\\` and `"` escaped.

A key range (ranges.py) adds its bounds: `k=gte.<from>&k=lt.<before>`, or for several columns one
`and=(or(...),or(...))` tree comparing the key as a tuple, the keyset cursor's bound included.

The tap never orders text keys itself: text compares by the database's collation, which Python
does not know. It checks that a page holds neither the key it asked to go past (a server that
ignored the filter would send the same rows again) nor the range's upper bound. Keys Python
orders as PostgreSQL does (numbers, uuids, dates and timestamps of a described type: see
ranges.order_value) are also checked to lie between the bounds.
"""

from __future__ import annotations

import dataclasses
import decimal
import re
import typing as t

from tap_wiserock_api.errors import SourceShapeError
from tap_wiserock_api.normalize import describe_key
from tap_wiserock_api.ranges import order_value

Cursor = tuple[t.Any, ...]
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def literal(value: t.Any) -> str:
    """A key value as a filter operand: PostgreSQL reads it back as the value the API sent."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return format(value, "f")  # 1E-8 would do too, but a plain number reads the same everywhere
    return str(value)


def quoted(text: str) -> str:
    """A double-quoted value or name for a logic tree."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def field(name: str) -> str:
    """A column name inside `or=(...)` or `order=`: quoted unless a plain identifier."""
    return name if _PLAIN_NAME.fullmatch(name) else quoted(name)


@dataclasses.dataclass(frozen=True)
class Keyset:
    table: str
    key: tuple[str, ...]
    kinds: tuple[str, ...]
    types: tuple[str | None, ...] = ()  # the key columns' PostgreSQL types, when the description gave them

    @property
    def order(self) -> str:
        return ",".join(f"{field(name)}.asc" for name in self.key)

    def descending(self) -> str:
        return ",".join(f"{field(name)}.desc" for name in self.key)

    @property
    def select(self) -> str:
        """Only the key columns."""
        return ",".join(field(name) for name in self.key)

    def after(self, cursor: Cursor | None) -> list[tuple[str, str]]:
        """The filter for keys after `cursor` (none for the first page)."""
        return self.filters(cursor)

    def filters(self, lower: Cursor | None, upper: Cursor | None = None, *, inclusive: bool = False,
                any_of: t.Sequence[Cursor] = ()) -> list[tuple[str, str]]:
        """Keys after `lower` (or from it, `inclusive`) and before `upper`, in key order, and
        (with `any_of`) equal to one of those keys. One column: top-level filters, which
        PostgREST ANDs. Otherwise one logic tree (`or=` or `and=`), its values quoted."""
        if len(self.key) == 1 and not any_of:
            name = self.key[0]
            return [*([(name, f"{'gte' if inclusive else 'gt'}.{literal(lower[0])}")] if lower is not None else []),
                    *([(name, f"lt.{literal(upper[0])}")] if upper is not None else [])]
        terms = [*([self._compare(lower, "gt", "gte" if inclusive else "gt")] if lower is not None else []),
                 *([self._compare(upper, "lt", "lt")] if upper is not None else []),
                 *([f"or({','.join(map(self._equal, any_of))})"] if any_of else [])]
        if not terms:
            return []
        if len(terms) == 1:
            tree = terms[0]
            return [("or", tree[2:])] if tree.startswith("or(") else [("and", f"({tree})")]
        return [("and", f"({','.join(terms)})")]

    def _compare(self, cursor: Cursor, strict: str, last: str) -> str:
        """The key compared with `cursor` as a tuple: `or(a.gt."x",and(a.eq."x",b.<last>."y"))`."""
        terms = []
        for position, name in enumerate(self.key):
            operator = last if position == len(self.key) - 1 else strict
            equal = [f"{field(self.key[n])}.eq.{quoted(literal(cursor[n]))}" for n in range(position)]
            compare = f"{field(name)}.{operator}.{quoted(literal(cursor[position]))}"
            terms.append(f"and({','.join([*equal, compare])})" if equal else compare)
        return f"or({','.join(terms)})" if len(terms) > 1 else terms[0]

    def _equal(self, cursor: Cursor) -> str:
        terms = [f"{field(name)}.eq.{quoted(literal(value))}" for name, value in zip(self.key, cursor, strict=True)]
        return f"and({','.join(terms)})" if len(terms) > 1 else terms[0]

    def cursor_of(self, row: dict[str, t.Any]) -> Cursor:
        cursor = tuple(row.get(name) for name in self.key)
        if None in cursor:
            raise SourceShapeError(
                f"table '{self.table}': the key ({', '.join(self.key)}) is null in row {describe_key(row, self.key)}: "
                "keyset paging needs key columns that are never null; set this table's key in the tables setting")
        return cursor

    def check_progress(self, cursor: Cursor | None, rows: t.Sequence[dict[str, t.Any]], upper: Cursor | None,
                       *, inclusive: bool = False) -> Cursor:
        """The page's last key, after checking that the server applied the key filters: the page
        holds neither the key it asked to go past (nor, `inclusive`, that key after its first
        row) nor the range's upper bound; keys Python can order must also lie between them."""
        last = self.cursor_of(rows[-1])
        if cursor is None and upper is None:
            return last
        cursors = [self.cursor_of(row) for row in rows]
        repeated = cursor is not None and cursor in (cursors[1:] if inclusive else cursors)
        if repeated or self._outside(cursor, last, upper, inclusive=inclusive) or (upper is not None and upper in cursors):
            shown = ", ".join(map(literal, cursor)) if cursor is not None else "the first"
            bound = f" up to ({', '.join(map(literal, upper))})" if upper is not None else ""
            raise SourceShapeError(f"reading table '{self.table}': the server ignored the key filter (asked for keys "
                                   f"{'from' if inclusive else 'after'} ({shown}){bound}, "
                                   f"got ({', '.join(map(literal, last))}))")
        return last

    def _outside(self, cursor: Cursor | None, last: Cursor, upper: Cursor | None, *, inclusive: bool) -> bool:
        """Whether the page's last key lies outside (cursor, upper), where Python orders this key
        as the server does (ranges.order_value: numbers, uuids, described dates and timestamps)."""
        if len(self.key) != 1:
            return False
        pg_type = self.types[0] if self.types else None
        values = [order_value(self.kinds[0], pg_type, bound[0]) if bound is not None else None
                  for bound in (cursor, last, upper)]
        low, end, high = values
        if end is None:
            return False
        below = low is not None and (end < low or (end == low and not inclusive))
        return below or (high is not None and end >= high)
