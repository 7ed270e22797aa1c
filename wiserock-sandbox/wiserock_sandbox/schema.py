"""The sandbox's tables as data: columns with their PostgreSQL types, keys and foreign keys.

A definition file (JSON) lists tables the way PostgREST's schema cache knows them:

    {"tables": [{"name": "note",
                 "columns": [{"name": "id", "type": "uuid", "primary_key": true, "nullable": false},
                             {"name": "author_id", "type": "bigint", "references": "user.id"},
                             {"name": "tags", "type": "text[]"}],
                 "rls_without_policy": false,
                 "rows": [{"id": "...", "author_id": 1, "tags": ["a"]}]},
                {"name": "tagged_note", "view_of": "note", "columns": ["id", "author_id"],
                 "where": {"pinned": true}}]}

A table may name its `schema` (`"schema": "analytics"`; `public` when absent): a read picks one
with the `Accept-Profile` header (section 0 of the wire reference), so the same name may be a
table in two schemas. A view (`view_of` a table of its schema listed before it) shows some of
that table's columns, of the rows whose `where` columns hold those values, always as they are
now; it is described as PostgREST describes views (section 1.5 of the wire reference): every
column nullable, so no `required`; the table's primary key when all its columns pass through; a
column passing a foreign key through keeps the table's `<fk/>` note, which names the table.

Types are spelled as PostgREST's OpenAPI `format` spells them (`bigint`, `numeric`, `text`,
`uuid`, `jsonb`, `text[]`, `timestamp with time zone`, ...). Values are stored as PostgREST
renders them in JSON (numbers exact, as `decimal.Decimal`). Ordering and filter comparisons
follow PostgreSQL per type; text compares by a collation that is not code-point order (as
`en_US` is not), so that a client that orders text itself is caught.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import pathlib
import typing as t
import unicodedata
import uuid

from wiserock_sandbox.errors import postgrest_error

Row = dict[str, t.Any]
SAMPLE_DEFINITIONS = pathlib.Path(__file__).with_name("sample_tables.json")
INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})
NUMBER_TYPES = frozenset({"numeric", "real", "double precision"})
JSON_TYPES = frozenset({"json", "jsonb"})


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    primary_key: bool = False
    references: str | None = None  # "table.column" of a single-column foreign key

    @property
    def base_type(self) -> str:
        """The type without a modifier: `character varying(20)` is `character varying`."""
        name = self.type.split("(")[0].strip()
        return name + ("[]" if self.type.endswith("[]") and not name.endswith("[]") else "")


@dataclasses.dataclass(frozen=True)
class TableDef:
    name: str
    columns: tuple[Column, ...]
    rls_without_policy: bool = False  # RLS on and no policy: anon and authenticated read no rows
    view_of: str | None = None  # a view: the table whose rows it shows
    view_where: tuple[tuple[str, t.Any], ...] = ()  # (column, value): the table's rows it shows
    schema: str = "public"  # a view is in its table's schema

    @property
    def qualified(self) -> str:
        """`schema.name`, as PostgREST's errors name a table."""
        return f"{self.schema}.{self.name}"

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def primary_key(self) -> list[str]:
        return [column.name for column in self.columns if column.primary_key]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise postgrest_error(400, "42703", f"column {self.name}.{name} does not exist")

    def shows(self, row: Row) -> bool:
        """Whether a view shows this row of its table."""
        return all(row[column] == value for column, value in self.view_where)

    @classmethod
    def view(cls, name: str, table: TableDef, columns: t.Sequence[str], where: t.Mapping[str, t.Any] | None = None) -> TableDef:
        """`create view name as select columns from table where ...`, as PostgREST's schema cache sees it."""
        passed = [table.column(column) for column in columns]
        keeps_key = bool(table.primary_key) and set(table.primary_key) <= set(columns)
        return cls(name, tuple(dataclasses.replace(column, nullable=True, primary_key=column.primary_key and keeps_key)
                               for column in passed),
                   view_of=table.name, view_where=tuple((where or {}).items()), schema=table.schema)

    @classmethod
    def from_json(cls, spec: dict[str, t.Any], tables: t.Mapping[str, TableDef] | None = None) -> TableDef:
        """A table, or a view (`view_of`) of one of `tables` (by qualified name) in its schema."""
        schema = spec.get("schema", "public")
        if "view_of" in spec:
            return cls.view(spec["name"], (tables or {})[f"{schema}.{spec['view_of']}"], spec["columns"], spec.get("where"))
        columns = tuple(Column(**column) for column in spec["columns"])
        return cls(spec["name"], columns, bool(spec.get("rls_without_policy", False)), schema=schema)

    def to_json(self) -> dict[str, t.Any]:
        where = {"schema": self.schema} if self.schema != "public" else {}
        if self.view_of is not None:
            return {"name": self.name, **where, "view_of": self.view_of, "columns": self.names,
                    "where": dict(self.view_where)}
        return {"name": self.name, **where, "columns": [dataclasses.asdict(column) for column in self.columns],
                "rls_without_policy": self.rls_without_policy}


def load_definitions(path: pathlib.Path) -> list[tuple[TableDef, list[Row] | None]]:
    """Tables of a definition file, each with its rows (None when the file gives none, and for a view)."""
    document = json.loads(path.read_text(encoding="utf-8"), parse_float=decimal.Decimal)
    found = []
    tables: dict[str, TableDef] = {}
    for spec in document["tables"]:
        table = TableDef.from_json(spec, tables)
        tables[table.qualified] = table
        found.append((table, spec.get("rows")))
    return found


# -- PostgreSQL semantics per type ---------------------------------------------------------
def _collation_key(text: str) -> tuple[str, str]:
    """Letters before case, accents after the letter, ties by code point: like en_US, unlike Python."""
    return unicodedata.normalize("NFKD", text).casefold(), text


def _instant(text: str, *, zoned: bool) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    if not zoned:
        return value.replace(tzinfo=None)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def sort_key(column: Column, value: t.Any) -> t.Any:
    """What PostgreSQL compares for a stored value of this column (never None)."""
    kind = column.base_type
    if kind in INTEGER_TYPES or kind in NUMBER_TYPES:
        return decimal.Decimal(value) if not isinstance(value, int) else value
    if kind == "uuid":
        return uuid.UUID(value).bytes
    if kind == "timestamp with time zone":
        return _instant(value, zoned=True)
    if kind == "timestamp without time zone":
        return _instant(value, zoned=False)
    if kind == "boolean":
        return bool(value)
    if kind in {"text", "character varying", "character", "citext"}:
        return _collation_key(value)
    if kind == "date":
        dt.date.fromisoformat(value)  # a ValueError for what is not a date
    return str(value)  # date (ISO text orders as dates do), time, others


def operand_key(column: Column, operand: str) -> t.Any:
    """A filter operand read as the column's type, for comparison; PostgreSQL's 22P02 when it is not one."""
    kind = column.base_type
    try:
        if kind in INTEGER_TYPES:
            return int(operand)
        if kind == "boolean":
            return {"true": True, "false": False, "t": True, "f": False}[operand.lower()]
        if kind in NUMBER_TYPES:
            return decimal.Decimal(operand)
        return sort_key(column, operand)
    except (ValueError, KeyError, decimal.InvalidOperation):
        raise postgrest_error(400, "22P02", f'invalid input syntax for type {kind}: "{operand}"') from None


def fits(column: Column, value: t.Any) -> bool:
    """Whether a value is what PostgREST can render for this column type (a test's typo is caught)."""
    if value is None:
        return column.nullable
    kind = column.base_type
    if kind.endswith("[]"):
        return isinstance(value, list)
    if kind in JSON_TYPES:
        return True
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in INTEGER_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in NUMBER_TYPES:
        return (isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool)) or value in {
            "NaN", "Infinity", "-Infinity"}
    if not isinstance(value, str):
        return False
    try:
        sort_key(column, value)
    except ValueError:
        return value in {"infinity", "-infinity"} and kind.startswith(("timestamp", "date"))
    return True


# -- JSON as PostgREST writes it --------------------------------------------------------------
def dumps(value: t.Any) -> str:
    """JSON text with numbers exact: a Decimal is written with every digit it holds."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key, ensure_ascii=False)}:{dumps(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def holds_exact_numbers(table: TableDef, rows: t.Iterable[Row]) -> bool:
    """Whether any of these rows holds a Decimal (then `dumps` writes them; else the C-fast json.dumps
    writes the same text): only numeric, json and array columns can."""
    names = [column.name for column in table.columns if column.base_type in NUMBER_TYPES
             or column.base_type in JSON_TYPES or column.type.endswith("[]")]
    return bool(names) and any(_holds_decimal(row[name]) for row in rows for name in names)


def _holds_decimal(value: t.Any) -> bool:
    if isinstance(value, decimal.Decimal):
        return True
    if isinstance(value, dict):
        return any(_holds_decimal(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_decimal(item) for item in value)
    return False
