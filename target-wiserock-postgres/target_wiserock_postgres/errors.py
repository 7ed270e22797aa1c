"""The failures a user can act on; each becomes one line `target-wiserock-postgres: error: ...`."""

from __future__ import annotations

import re

from singer_sdk.exceptions import MissingKeyPropertiesError, RecordsWithoutSchemaException

VALUE_LIMIT = 60
_QUOTED = re.compile(r'"([^"]*)"')


def shorten(value: object, limit: int = VALUE_LIMIT) -> str:
    """A value as a user may see it in one line: newlines escaped, long values cut."""
    text = str(value).replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def shorten_quoted(message: str) -> str:
    """A server message with every quoted value cut short (values can be megabytes long)."""
    return _QUOTED.sub(lambda match: f'"{shorten(match[1])}"', " ".join(message.split()))


class LoadError(Exception):
    """An expected failure: bad input or configuration, a refused change, an unreachable database."""


class RecordBeforeSchemaError(LoadError, RecordsWithoutSchemaException):
    """A RECORD or BATCH for a stream whose SCHEMA has not arrived (the SDK's exception type, for its tests)."""


class MissingKeyError(LoadError, MissingKeyPropertiesError):
    """A record without a value for a key property (the SDK's exception type, for its tests)."""


class TerminatedError(LoadError):
    """SIGTERM or SIGINT arrived: the transaction is rolled back."""
