"""Stream and property names -> PostgreSQL table and column names.

Any name PostgreSQL can hold as a quoted identifier is kept exactly (quotes, backslashes,
spaces, unicode, SQL keywords, `--`, `;`, control characters, case). A name over 63 bytes,
which PostgreSQL would cut silently, is shortened the way tap-wiserock-csv shortens its column
names (`short_name`), and the run logs it. Refused, in one line naming the stream and the
name: an empty name, a NUL character, PostgreSQL's system column names, and two names of a
stream that would become the same column.
"""

from __future__ import annotations

import hashlib
import logging
import typing as t

from target_wiserock_postgres.errors import LoadError

# PostgreSQL cuts longer identifiers silently, which would merge two columns or tables.
MAX_IDENTIFIER_BYTES = 63
HASH_CHARS = 8
# Columns every table already has, hidden: CREATE TABLE refuses them.
SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})

logger = logging.getLogger("target-wiserock-postgres")


def _short_hash(encoded: bytes) -> str:
    return hashlib.blake2s(encoded, digest_size=HASH_CHARS // 2).hexdigest()


def short_name(name: str) -> str:
    """`name` when it fits in 63 bytes, else its first characters (up to 54 bytes, trailing `_`
    removed), `_` and 8 hex digits of a hash of the whole name: deterministic, and long names
    sharing a prefix stay apart. tap-wiserock-csv's rule for column names (naming.py), byte for
    byte on its ASCII names: a CSV stream name plus the `stg_wiserock_csv_` prefix of the
    project's stream map is shortened here as the tap would shorten it (tests/ checks that they agree)."""
    encoded = name.encode()
    if len(encoded) <= MAX_IDENTIFIER_BYTES:
        return name
    head = encoded[:MAX_IDENTIFIER_BYTES - HASH_CHARS - 1].decode(errors="ignore")  # no cut character
    return f"{head.rstrip('_')}_{_short_hash(encoded)}"


def _refusal(name: str) -> str | None:
    """Why PostgreSQL cannot hold `name` as an identifier at all, or None."""
    if not name:
        return "is empty"
    if "\x00" in name:
        return "contains a NUL character, which PostgreSQL names cannot hold"
    return None


def checked_identifier(name: str, what: str) -> str:
    """`name` if PostgreSQL keeps it whole (a setting such as the schema: never shortened), else a LoadError."""
    if problem := _refusal(name):
        raise LoadError(f"{what} {name!r} {problem}")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise LoadError(f"{what} {name!r} is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte limit for names")
    return name


def table_name(stream: str) -> str:
    """The table of a stream: its name, shortened when over 63 bytes."""
    if problem := _refusal(stream):
        raise LoadError(f"stream {stream!r}: its name {problem}; rename the stream in the tap or a stream map")
    return short_name(stream)


def column_names(stream: str, table: str, properties: t.Iterable[str],
                 earlier: t.Mapping[str, str] | None = None) -> dict[str, str]:
    """property -> column for a SCHEMA's properties; `earlier` holds the stream's mapping from the
    run's previous SCHEMA messages, whose columns no new property may take over."""
    earlier = earlier or {}
    owners = {column: prop for prop, column in earlier.items()}
    mapping: dict[str, str] = {}
    for prop in properties:
        if problem := _refusal(prop):
            raise LoadError(f"stream {stream!r}: property {prop!r} {problem}; rename it in the tap or a stream map")
        if prop in SYSTEM_COLUMNS:
            raise LoadError(f"stream {stream!r}: property {prop!r} has the name of a PostgreSQL system column "
                            f"({', '.join(sorted(SYSTEM_COLUMNS))}), which no table can have; rename it in the tap "
                            "or a stream map")
        column = short_name(prop)
        owner = owners.setdefault(column, prop)
        if owner != prop:
            raise LoadError(f"stream {stream!r}: properties {owner!r} and {prop!r} would both be column {column!r} "
                            f"of table {table} (names over {MAX_IDENTIFIER_BYTES} bytes are shortened); rename one "
                            "in the tap or a stream map")
        if column != prop and prop not in earlier:
            logger.info("table %s: property %r is longer than %d bytes; its column is %s", table, prop,
                        MAX_IDENTIFIER_BYTES, column)
        mapping[prop] = column
    return mapping
