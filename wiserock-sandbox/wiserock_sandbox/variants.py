"""Tables unlike the sample's, for tests: the shapes a real project may have instead.

`user` has the columns a new user of the tap met (`username`, `balance`, `profile`, `tags`,
`signed_up_at`; no first or last name), `note` a uuid key and `author_id` (its foreign key to
`user`), `event` (a table added through the tap's `tables` setting) a composite key of text and
integer whose text values hold the characters PostgREST reserves in logic trees, and a `user_id`
referencing `user`. The view `PINNED_NOTE` (add `(PINNED_NOTE, None)` after `note`) shows the
pinned notes, with their key and `author_id`'s foreign key as PostgREST describes views. Values: exact numerics, jsonb with
nested decimals, arrays, timestamps with offsets and without, dates, and columns whose type
only later rows show (integers then decimals, date-like text then other text, nulls then JSON).
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
import uuid

from wiserock_sandbox.schema import Column, Row, TableDef

USER = TableDef("user", (
    Column("id", "bigint", nullable=False, primary_key=True),
    Column("username", "text"),
    Column("email", "character varying(255)"),
    Column("activeflag", "text"),
    Column("balance", "numeric(20,3)"),
    Column("profile", "jsonb"),
    Column("tags", "text[]"),
    Column("signed_up_at", "timestamp with time zone"),
))
NOTE = TableDef("note", (
    Column("id", "uuid", nullable=False, primary_key=True),
    Column("author_id", "bigint", references="user.id"),
    Column("content", "text"),
    Column("pinned", "boolean"),
    Column("inserted_at", "timestamp with time zone"),
))
EVENT = TableDef("event", (
    Column("tenant", "text", nullable=False, primary_key=True),
    Column("seq", "integer", nullable=False, primary_key=True),
    Column("user_id", "bigint", references="user.id"),
    Column("amount", "numeric"),  # integers on the first rows, decimals later
    Column("ratio", "double precision"),
    Column("due", "text"),  # dates on the first rows, other text later
    Column("extra", "jsonb"),  # null on the first rows, objects later
    Column("day", "date"),
    Column("local_time", "timestamp without time zone"),
))
PINNED_NOTE = TableDef.view("pinned_note", NOTE, ["id", "author_id", "content"], where={"pinned": True})
TENANTS = ("a,b", "a.b", "(x)", 'say "hi"', "back\\slash", "Zed", "apple", "Émile", "zoe", "ünder", "colon:y")
FLAGS = ("Y", "N", "yes", "no", "true", "False", "t", "F", None)
OFFSETS = ("+00:00", "+02:00", "-05:00", "+05:30", "-09:30")
BIG = decimal.Decimal("12345678901234567890.123")


def _instant(rng: random.Random) -> str:
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=rng.randrange(0, 86_400 * 700),
                                                                           microseconds=rng.randrange(0, 1_000_000))
    offset = rng.choice(OFFSETS)
    sign, hours, minutes = (1 if offset[0] == "+" else -1), int(offset[1:3]), int(offset[4:])
    return moment.astimezone(dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))).isoformat()


def unlike_sample(users: int = 40, notes: int = 90, events_per_tenant: int = 9,
                  seed: int = 1) -> list[tuple[TableDef, list[Row]]]:
    """(definition, rows) of `user`, `note` and `event`, parents first, deterministic."""
    rng = random.Random(seed)
    user_rows = [{
        "id": 3 * n + 1,
        "username": f"user {n} \"quoted\", with\nnewline" if n % 7 == 0 else f"user{n}",
        "email": f"u{n}@example.com",
        "activeflag": FLAGS[n % len(FLAGS)],
        "balance": [BIG, decimal.Decimal("0.100"), decimal.Decimal("-7.250"), None][n % 4],
        "profile": {"plan": rng.choice(["free", "pro"]), "limits": {"rate": decimal.Decimal("2.50"), "n": n}},
        "tags": ["a", f"tag {n}"] if n % 3 else [],
        "signed_up_at": _instant(rng),
    } for n in range(users)]
    note_rows = [{
        "id": str(uuid.UUID(int=rng.getrandbits(128))),
        "author_id": rng.choice(user_rows)["id"],
        "content": rng.choice(["plain", "café naïve 🚀", "a,b (c)", "tab\there", "nul\x00inside"]),
        "pinned": n % 5 == 0,
        "inserted_at": _instant(rng),
    } for n in range(notes)]
    event_rows = []
    for tenant in TENANTS:
        for seq in range(1, events_per_tenant + 1):
            late = tenant not in TENANTS[:3]  # the first rows in key order are the early ones
            event_rows.append({
                "tenant": tenant, "seq": seq, "user_id": rng.choice(user_rows)["id"],
                "amount": (BIG if seq % 3 == 0 else decimal.Decimal("0.1")) if late and seq % 2 else seq * 10,
                "ratio": [decimal.Decimal("0.1"), decimal.Decimal("1E-05"), decimal.Decimal("3.5E+20"), None][seq % 4],
                "due": "n/a" if late and seq == 4 else f"2024-0{seq}-1{seq}",
                "extra": {"k": [1, {"deep": decimal.Decimal("0.000001")}], "t": tenant} if late and seq % 2 else None,
                "day": f"2023-12-{10 + seq}",
                "local_time": f"2024-02-29T{seq:02d}:30:00.25",
            })
    return [(USER, user_rows), (NOTE, note_rows), (EVENT, event_rows)]
