"""The run's one connection, and PostgreSQL errors translated into one line a user can act on."""

from __future__ import annotations

import dataclasses
import re
import typing as t

import psycopg
from psycopg import errors as pgerrors

from target_wiserock_postgres.errors import LoadError, MissingKeyError, shorten, shorten_quoted

# The context of an error in a COPY: 'COPY wr_load_1, line 3, column total: "1e999999"' (the
# column and value parts are absent for some errors).
_DIGITS = re.compile(r"\d+")
_COLUMN = ", column "
_VALUE = ': "'
_DUPLICATE_KEY = re.compile(r"Key (?P<key>\(.*\)=\(.*\)) (?:is duplicated|already exists)", re.DOTALL)
_VIEW = re.compile(r"on view (?P<view>\S+) depends on column \"(?P<column>[^\"]+)\"")


@dataclasses.dataclass(frozen=True)
class ConnectionSettings:
    """Where the staging tables live. `host` may be a name, an IP or a unix-socket directory."""

    host: str | None
    port: int
    user: str | None
    password: str | None
    database: str | None
    sslmode: str

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> ConnectionSettings:
        return cls(host=config.get("host") or None, port=int(config.get("port") or 5432), user=config.get("user") or None,
                   password=config.get("password") or None, database=config.get("database") or None,
                   sslmode=config.get("sslmode") or "prefer")

    @property
    def label(self) -> str:
        """HOST:PORT/DB, or SOCKETDIR/DB: never the password."""
        host = self.host or "localhost"
        where = host if host.startswith("/") else f"{host}:{self.port}"
        return f"{where}/{self.database or self.user or ''}"

    def connect(self) -> psycopg.Connection:
        # An empty password is left out, so that trust or peer authentication (and .pgpass) apply.
        # The application name is a fallback: PGAPPNAME, where set, names the connection (e.g. per job).
        params = {"host": self.host, "port": self.port, "user": self.user, "password": self.password,
                  "dbname": self.database, "sslmode": self.sslmode,
                  "fallback_application_name": "target-wiserock-postgres"}
        try:
            connection = psycopg.connect(**{k: v for k, v in params.items() if v is not None}, connect_timeout=30)
            # UTC for the session: date-times without an offset are read as the UTC the taps emit.
            # Set after connecting, so that neither the server's default nor PGTZ can win over it.
            connection.execute("set time zone 'UTC'")
            # Dates print as YYYY-MM-DD, the only way a tap writes them: a date column a later
            # SCHEMA turns into text keeps each value as written (the order of input fields stays).
            connection.execute("set datestyle to 'ISO'")
            connection.commit()
        except psycopg.Error as exc:
            raise LoadError(f"database at {self.label}: connection failed: {shorten_quoted(str(exc))}") from None
        return connection


@dataclasses.dataclass
class CopyTarget:
    """What a COPY's rows are, for error messages: the staging table, the relation and columns
    the COPY names, and where its line 1 came from."""

    table: str
    relation_name: str
    columns: tuple[str, ...]
    first_row: int = 1  # row number, in the stream, of the COPY's line 1
    source: str | None = None  # a batch file, when the COPY reads one

    def row(self, line: int) -> str:
        if self.source:
            return f"{self.source}, row {line:,}"
        return f"record {self.first_row + line - 1:,} of this run"

    def position(self, context: str) -> tuple[int, str | None, str | None] | None:
        """(line, column, value) from the context of an error in this COPY, `COPY <relation>, line
        <n>[, column <column>][: "<value>]`. PostgreSQL writes the names as they are (quotes,
        commas, colons, newlines), so they are matched whole rather than parsed."""
        prefix = f"COPY {self.relation_name}, line "
        line = _DIGITS.match(context, len(prefix)) if context.startswith(prefix) else None
        if line is None:
            return None
        rest, column = context[line.end():], None
        if rest.startswith(_COLUMN):
            rest = rest[len(_COLUMN):]
            column = next((name for name in sorted(self.columns, key=len, reverse=True)
                           if rest == name or rest.startswith(f'{name}{_VALUE}')), None)
            rest = rest[len(column):] if column else ""
        value = rest[len(_VALUE):].removesuffix('"') if rest.startswith(_VALUE) else None
        return int(line[0]), column, value


def explain(exc: psycopg.Error, settings: ConnectionSettings, copying: CopyTarget | None,
            merging: str | None = None) -> LoadError:
    """A psycopg error as one line naming the staging table (never a temp table), the column,
    the record and the offending value cut short; connection losses keep the server's words."""
    diag = exc.diag
    primary = shorten_quoted(diag.message_primary or str(exc))
    if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, pgerrors.QueryCanceled):
        return LoadError(f"database at {settings.label}: connection lost during the load ({shorten_quoted(str(exc))}); "
                         "nothing was changed, rerun the job")
    position = copying.position(diag.context or "") if copying else None
    target = copying if position else None
    table = target.table if target else (merging or diag.table_name or "?")
    column = (position and position[1]) or diag.column_name
    if isinstance(exc, pgerrors.NotNullViolation):
        where = f" ({target.row(position[0])})" if target and position else ""
        return MissingKeyError(f"table {table}: a record has no value for column {column}, "
                               f"which is part of the key{where}")
    if isinstance(exc, pgerrors.UniqueViolation):
        match = _DUPLICATE_KEY.search(diag.message_detail or "")
        key = shorten(match["key"]) if match else "?"
        return LoadError(f"table {table}: duplicate key {key} in this run's rows; nothing was changed")
    if isinstance(exc, pgerrors.FeatureNotSupported) and (view := _VIEW.search(diag.message_detail or "")):
        return LoadError(f"table {table}, column {view['column']}: its type cannot change because view {view['view']} "
                         "depends on it; nothing was changed (drop or change the view, then rerun)")
    if target and position:
        line, _, value = position
        shown = f': value "{shorten(value)}"' if value is not None and '"' not in primary else ""
        where = f", column {column}" if column else ""
        return LoadError(f"table {table}{where}{shown}: {primary} ({target.row(line)}); nothing was changed")
    return LoadError(f"database at {settings.label}: {primary}" + (f" (table {table})" if table != "?" else "")
                     + "; nothing was changed")
