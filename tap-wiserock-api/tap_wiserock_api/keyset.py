"""Keyset paging filters for any orderable key, one column or several, as PostgREST reads them.

One column: `order=k.asc&k=gt.<last>`. Several: `order=a.asc,b.asc&or=(a.gt."x",and(a.eq."x",b.gt."y"))`.
A value in a simple filter is read to the end of the parameter, as written; in an `or=(...)`
tree a value ends at the next `,` or `)` unless it is double-quoted, and inside the quotes a
backslash takes the next character literally (PostgREST's pLogicSingleVal and pQuotedValue), so
every tree value is quoted, its `\\` and `"` escaped.

The tap never orders key values itself: text compares by the database's collation and uuid by
its bytes, which Python does not know. It only checks that a page does not hold the key it
asked to go past (a server that ignored the filter would send the same rows again). Integer
and number keys, which compare exactly in Python too, are also checked to increase.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from tap_wiserock_api.errors import SourceShapeError
from tap_wiserock_api.kinds import INTEGER, NUMBER
from tap_wiserock_api.normalize import describe_key

Cursor = tuple[t.Any, ...]
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def literal(value: t.Any) -> str:
    """A key value as a filter operand: PostgreSQL reads it back as the value the API sent."""
    if isinstance(value, bool):
        return "true" if value else "false"
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

    @property
    def splittable(self) -> bool:
        """Only a single integer key can be cut into ranges by arithmetic."""
        return len(self.key) == 1 and self.kinds[0] == INTEGER

    @property
    def order(self) -> str:
        return ",".join(f"{field(name)}.asc" for name in self.key)

    def descending(self) -> str:
        return ",".join(f"{field(name)}.desc" for name in self.key)

    def after(self, cursor: Cursor | None) -> list[tuple[str, str]]:
        """The filter for keys after `cursor` (none for the first page)."""
        if cursor is None:
            return []
        if len(self.key) == 1:
            return [(self.key[0], f"gt.{literal(cursor[0])}")]
        terms = []
        for position, name in enumerate(self.key):
            equal = [f"{field(self.key[n])}.eq.{quoted(literal(cursor[n]))}" for n in range(position)]
            greater = f"{field(name)}.gt.{quoted(literal(cursor[position]))}"
            terms.append(f"and({','.join([*equal, greater])})" if equal else greater)
        return [("or", f"({','.join(terms)})")]

    def up_to(self, upper: t.Any) -> list[tuple[str, str]]:
        """Keys up to and including `upper` (single integer keys only: see `splittable`)."""
        return [] if upper is None else [(self.key[0], f"lte.{literal(upper)}")]

    def cursor_of(self, row: dict[str, t.Any]) -> Cursor:
        cursor = tuple(row.get(name) for name in self.key)
        if None in cursor:
            raise SourceShapeError(
                f"table '{self.table}': the key ({', '.join(self.key)}) is null in row {describe_key(row, self.key)}: "
                "keyset paging needs key columns that are never null; set this table's key in the tables setting")
        return cursor

    def check_progress(self, cursor: Cursor | None, rows: t.Sequence[dict[str, t.Any]], upper: t.Any) -> Cursor:
        """The page's last key, after checking that the server applied the key filter."""
        last = self.cursor_of(rows[-1])
        if cursor is None:
            return last
        numeric = len(self.key) == 1 and self.kinds[0] in {INTEGER, NUMBER}
        ignored = (numeric and (last[0] <= cursor[0] or (upper is not None and last[0] > upper))) or any(
            self.cursor_of(row) == cursor for row in rows)
        if ignored:
            shown = ", ".join(map(literal, cursor))
            raise SourceShapeError(f"reading table '{self.table}': the server ignored the key filter (asked for keys "
                                   f"after ({shown}){f' up to {upper}' if upper is not None else ''}, "
                                   f"got ({', '.join(map(literal, last))}))")
        return last
