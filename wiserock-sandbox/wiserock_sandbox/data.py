"""Deterministic WiseRock sample rows, as the real API serves them (raw, un-normalized).

The rows deliberately carry everything the tap must cope with: id gaps, `activeflag`
in every spelling the source uses, timestamps with assorted UTC offsets, unicode,
quotes, newlines, NUL characters, and a few note bodies over 100 KB.
"""

from __future__ import annotations

import datetime as dt
import random
import typing as t
import uuid

Row = dict[str, t.Any]

# Every representation of the flag seen at the source (see the API tap issue).
ACTIVEFLAG_FORMS: tuple[t.Any, ...] = (
    True, False, 1, 0, "Y", "N", "y", "n", "yes", "no", "YES", "No",
    "true", "false", "TRUE", "False", "t", "f", "T", "F", None,
)
UTC_OFFSETS = ("+00:00", "+02:00", "-05:00", "+05:30", "-08:00", "+09:00", "+01:00")
FIRST_NAMES = ("Zoë", "José", "Łukasz", "Ana-María", "Chloé", "Søren", "Nguyễn", "Émile",
               "Aoife", "Dmitrïy", "李", "Anna", "John", "Fatima", "Oğuz", "Renée")
LAST_NAMES = ("O'Brien", "Müller", "García", "Smith", "Björk", "D'Angelo", "Ñúñez",
              "van der Berg", "Kowalski", "山田", "Johnson", "Lee", "\"Doc\" Brown")
WORDS = ("rock", "core", "sample", "quartz", "granite", "drill", "depth", "assay",
         "ore", "vein", "shale", "basalt", "survey", "grade", "log", "café", "naïve",
         "μ-scan", "🚀", "—", "\"quoted\"", "it's", "a,b", "tab\there")

EPOCH = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
LARGE_BODY_EVERY = 400  # one note in this many has a body over 100 KB
NUL_EVERY = 997  # one text in this many carries a NUL character


def _timestamp(rng: random.Random, after: dt.datetime | None = None) -> tuple[str, dt.datetime]:
    """An ISO 8601 timestamp with a random offset, and the instant it denotes."""
    start = after or EPOCH
    instant = start + dt.timedelta(seconds=rng.randrange(0, 3 * 365 * 86400))
    if rng.random() < 0.5:
        instant = instant.replace(microsecond=rng.randrange(0, 1_000_000))
    offset = rng.choice(UTC_OFFSETS)
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    delta = dt.timedelta(hours=hours, minutes=minutes) * (1 if offset[0] == "+" else -1)
    local = instant.astimezone(dt.timezone(delta))
    return local.isoformat(), instant


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _body(rng: random.Random, index: int) -> str:
    paragraphs = [_sentence(rng, rng.randrange(5, 40)) for _ in range(rng.randrange(1, 5))]
    body = "\n\n".join(paragraphs)
    if index % LARGE_BODY_EVERY == LARGE_BODY_EVERY - 1:
        body = (body + "\n") * (110_000 // max(len(body), 1) + 1)  # over 100 KB
    if index % NUL_EVERY == NUL_EVERY - 1:
        body += "\x00trailing after NUL"
    return body


def _ids(rng: random.Random, count: int) -> list[int]:
    """Increasing ids with gaps, like a table that has seen deletes."""
    ids, current = [], 0
    for _ in range(count):
        current += rng.choice((1, 1, 1, 2, 3, 7))
        ids.append(current)
    return ids


def generate_users(seed: int, count: int) -> list[Row]:
    rng = random.Random(f"user-{seed}")
    rows = []
    for index, user_id in enumerate(_ids(rng, count)):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created, created_instant = _timestamp(rng)
        updated, _ = _timestamp(rng, after=created_instant)
        rows.append({
            "id": user_id,
            "email": f"user{user_id}@wiserock.example",
            "first_name": first if index % NUL_EVERY else first + "\x00",
            "last_name": last,
            "activeflag": ACTIVEFLAG_FORMS[index % len(ACTIVEFLAG_FORMS)],
            "created_at": created,
            "updated_at": updated,
        })
    return rows


def _uuids(seed: int, count: int) -> list[str]:
    """Version 4 uuids, as gen_random_uuid() makes them, but the same for the same seed."""
    rng = random.Random(f"note-uuid-{seed}")
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def generate_notes(seed: int, count: int, user_ids: t.Sequence[int], key: str = "bigint") -> list[Row]:
    """Notes keyed by increasing bigints with gaps, or (`key` "uuid") by random uuids; the other
    columns are the same either way."""
    rng = random.Random(f"note-{seed}")
    rows = []
    ids: t.Sequence[int | str] = _ids(rng, count)
    if key == "uuid":
        ids = _uuids(seed, count)
    for index, note_id in enumerate(ids):
        created, created_instant = _timestamp(rng)
        updated, _ = _timestamp(rng, after=created_instant)
        rows.append({
            "id": note_id,
            "user_id": rng.choice(user_ids),
            "title": _sentence(rng, rng.randrange(1, 8)).capitalize(),
            "body": _body(rng, index),
            "activeflag": ACTIVEFLAG_FORMS[(index * 7) % len(ACTIVEFLAG_FORMS)],
            "created_at": created,
            "updated_at": updated,
        })
    return rows


def generate_tables(seed: int, users: int, notes: int, *, note_key: str = "bigint") -> dict[str, list[Row]]:
    """The sandbox's tables (the sandbox stores them in key order)."""
    user_rows = generate_users(seed, users)
    note_rows = generate_notes(seed, notes, [row["id"] for row in user_rows], note_key) if user_rows else []
    return {"user": user_rows, "note": note_rows}
