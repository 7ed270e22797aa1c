"""Column and stream names: snake_case, ASCII, at most 63 bytes, safe as PostgreSQL identifiers."""

from __future__ import annotations

import hashlib
import re
import typing as t
import unicodedata

from anyascii import anyascii

from tap_wiserock_csv.errors import CsvInputError

MAX_NAME_BYTES = 63  # PostgreSQL cuts longer identifiers silently
_HASH_CHARS = 8
_LOWER_OR_DIGIT_THEN_UPPER = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# "HTTPServer" -> "HTTP_Server", but a plural acronym stays whole: "URLs", "userIDs", "numCPUs".
_UPPER_RUN_THEN_WORD = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])(?![A-Z]s(?![a-z]))")
_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


def _transliterated(text: str) -> str:
    """Letters and digits of any script in ASCII (`Größe` -> `Grosse`, `売上` -> `MaiShang`).

    anyascii (one table for every script, no language guessing) is applied to letters and
    digits only: a symbol such as `€` or `%` stays a separator, as in ASCII headers.
    """
    if text.isascii():
        return text
    return "".join(anyascii(ch) if not ch.isascii() and unicodedata.category(ch)[0] in "LN" else ch for ch in text)


def _short_hash(text: str) -> str:
    return hashlib.blake2s(text.encode("utf-8"), digest_size=_HASH_CHARS // 2).hexdigest()


def snake_name(text: str, position: int) -> str:
    """`createdAt` -> `created_at`, `1st choice` -> `_1st_choice`, `""` -> `column_<position>`."""
    stripped = text.strip()
    name = _transliterated(stripped)
    name = _LOWER_OR_DIGIT_THEN_UPPER.sub("_", name)
    name = _UPPER_RUN_THEN_WORD.sub("_", name)
    name = _NOT_ALPHANUMERIC.sub("_", name.lower()).strip("_")
    if not name:
        if any(unicodedata.category(ch)[0] in "LN" for ch in stripped):
            # Letters without a transliteration: a name of their own, the same wherever the column stands.
            return f"column_{_short_hash(stripped)}"
        return f"column_{position}"
    if name[0].isdigit():
        name = f"_{name}"
    if len(name) > MAX_NAME_BYTES:
        # Shortened the same way every run; the hash keeps long names that share a prefix apart.
        name = f"{name[:MAX_NAME_BYTES - _HASH_CHARS - 1].rstrip('_')}_{_short_hash(name)}"
    return name


def _suffixed(name: str, number: int) -> str:
    """`id` -> `id_2`; a long name is cut so that the suffix stays within 63 bytes."""
    suffix = f"_{number}"
    return f"{name[:MAX_NAME_BYTES - len(suffix)].rstrip('_')}{suffix}"


def column_names(headers: t.Sequence[str], source: str, line: int = 1, *, rename_repeats: bool = True) -> list[str]:
    """Normalized names of a header row.

    A name already taken by an earlier header gets `_2`, `_3`, ... (the first free number:
    a suffix never takes a name another header has of its own); with `rename_repeats` false
    it is an error naming both headers.
    """
    bases = [snake_name(header, position) for position, header in enumerate(headers, start=1)]
    taken = set(bases)
    names: list[str] = []
    first_header: dict[str, str] = {}
    for header, base in zip(headers, bases, strict=True):
        if base not in first_header:
            first_header[base] = header
            names.append(base)
            continue
        if not rename_repeats:
            raise CsvInputError(f"{source} line {line}: headers {first_header[base]!r} and {header!r} "
                                f"both normalize to column name {base!r}")
        number = 2
        while _suffixed(base, number) in taken:
            number += 1
        taken.add(_suffixed(base, number))
        names.append(_suffixed(base, number))
    return names


def renamed_columns(headers: t.Sequence[str], columns: t.Sequence[str]) -> list[str]:
    """Each group of headers that normalize to one name, as `'ID' (column 1) -> id, 'id' (column 3) -> id_2`."""
    groups: dict[str, list[int]] = {}
    for index, header in enumerate(headers):
        groups.setdefault(snake_name(header, index + 1), []).append(index)
    return [", ".join(f"{headers[i]!r} (column {i + 1}) -> {columns[i]}" for i in indexes)
            for indexes in groups.values() if len(indexes) > 1]


def resolve_columns(requested: t.Iterable[str], headers: t.Sequence[str], columns: t.Sequence[str],
                    *, source: str, what: str) -> dict[str, str]:
    """Map names given in settings to column names: the column name, else the header as written.

    A column name wins (`id` is the column named id even where another column's header is
    written `id`); a header written the same way over several columns must be given by its
    column name (`id_2`).
    """
    by_header: dict[str, list[str]] = {}
    for header, column in zip(headers, columns, strict=True):
        by_header.setdefault(header.strip(), []).append(column)
    resolved: dict[str, str] = {}
    unknown: list[str] = []
    for name in requested:
        found = [name] if name in columns else by_header.get(name.strip(), [])
        if len(found) > 1:
            raise CsvInputError(f"{source}: {what}: {name!r} is the header of {len(found)} columns "
                                f"({', '.join(found)}); give the column name instead")
        if found:
            resolved[name] = found[0]
        else:
            unknown.append(name)
    if unknown:
        raise CsvInputError(f"{source}: {what} not in the file: {', '.join(unknown)} "
                            f"(columns: {', '.join(columns)}; the header as written works too)")
    return resolved
