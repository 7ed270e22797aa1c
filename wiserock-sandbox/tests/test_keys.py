"""Reads by the primary key of any type: bounds on the key are a bisect on its stored sort keys,
`order` by the key in either direction is the stored order, and the answers are the ones
PostgreSQL gives (checked here against the rows ordered and filtered independently)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
import requests

from wiserock_sandbox import SANDBOX_SERVICE_KEY, Column, Sandbox, TableDef
from wiserock_sandbox.schema import sort_key

SERVICE = {"apikey": SANDBOX_SERVICE_KEY, "Authorization": f"Bearer {SANDBOX_SERVICE_KEY}"}
WORDS = ["apple", "Émile", "Zed", "zoe", "a,b", "(x)", "ünder", "back\\slash", "éa", "Ea", "eb"]
DOC = TableDef("doc", (Column("id", "uuid", nullable=False, primary_key=True), Column("n", "integer")))
WORD = TableDef("word", (Column("w", "text", nullable=False, primary_key=True), Column("n", "integer")))
PAIR = TableDef("pair", (Column("w", "text", nullable=False, primary_key=True),
                         Column("seq", "integer", nullable=False, primary_key=True), Column("n", "integer")))
STAMP = TableDef("stamp", (Column("at", "timestamp with time zone", nullable=False, primary_key=True),
                           Column("n", "integer")))


def tables() -> list:
    docs = [{"id": str(uuid.UUID(int=(n * 0x9E3779B97F4A7C15_F39CC0605CEDC834) % (1 << 128))), "n": n} for n in range(300)]
    words = [{"w": word, "n": n} for n, word in enumerate(WORDS)]
    pairs = [{"w": word, "seq": seq, "n": n * 10 + seq} for n, word in enumerate(WORDS) for seq in range(1, 5)]
    stamps = [{"at": f"2024-03-0{1 + n % 9}T10:{n % 60:02d}:00+0{n % 5}:00", "n": n} for n in range(60)]
    return [(DOC, docs), (WORD, words), (PAIR, pairs), (STAMP, stamps)]


@pytest.fixture
def server(start_sandbox):
    return start_sandbox(tables=tables())


def get(server, table: str, query: str, **headers: str) -> requests.Response:
    return requests.get(f"{server.url}/rest/v1/{table}?{query}", headers={**SERVICE, **headers}, timeout=10)


def in_key_order(server, table: str) -> list[dict]:
    definition = server.sandbox.definition(table)
    key = [definition.column(name) for name in definition.primary_key]
    return sorted(server.sandbox.rows(table), key=lambda row: tuple(sort_key(column, row[column.name]) for column in key))


@pytest.mark.parametrize(("table", "key"), [("doc", "id"), ("word", "w"), ("stamp", "at")])
def test_bounds_on_a_single_column_key_of_any_type(server, table, key):
    ordered = in_key_order(server, table)
    keys = [row[key] for row in ordered]
    low, high = keys[len(keys) // 5], keys[len(keys) * 3 // 4]
    quoted_low, quoted_high = requests.utils.quote(low, safe=""), requests.utils.quote(high, safe="")
    cases = {
        f"{key}=gt.{quoted_low}": ordered[len(keys) // 5 + 1:],
        f"{key}=gte.{quoted_low}": ordered[len(keys) // 5:],
        f"{key}=lt.{quoted_high}": ordered[:len(keys) * 3 // 4],
        f"{key}=lte.{quoted_high}": ordered[:len(keys) * 3 // 4 + 1],
        f"{key}=eq.{quoted_low}": [ordered[len(keys) // 5]],
        f"{key}=gte.{quoted_low}&{key}=lt.{quoted_high}": ordered[len(keys) // 5:len(keys) * 3 // 4],
        f"{key}=gte.{quoted_high}&{key}=lt.{quoted_low}": [],
    }
    for filters, expected in cases.items():
        assert get(server, table, f"order={key}.asc&{filters}").json() == expected, filters
        assert get(server, table, f"order={key}.desc&{filters}").json() == expected[::-1], filters
        counted = get(server, table, f"order={key}.asc&limit=2&offset=1&{filters}", Prefer="count=exact")
        assert counted.headers["Content-Range"].endswith(f"/{len(expected)}")
        assert counted.json() == expected[1:3] if expected else counted.status_code == 416  # offset past the total


def test_offset_and_limit_on_the_key_order_both_ways(server):
    ordered = in_key_order(server, "doc")
    for offset in (0, 1, 150, 298, 299, 300, 301):
        asc = get(server, "doc", f"select=id&order=id.asc&offset={offset}&limit=1").json()
        desc = get(server, "doc", f"select=id&order=id.desc&offset={offset}&limit=3").json()
        assert asc == [{"id": row["id"]} for row in ordered[offset:offset + 1]]
        assert desc == [{"id": row["id"]} for row in ordered[::-1][offset:offset + 3]]
    ranged = get(server, "doc", "select=n&order=id.desc", Range="10-14")
    assert ranged.json() == [{"n": row["n"]} for row in ordered[::-1][10:15]]


def test_logic_trees_on_the_key_and_on_other_columns(server):
    ordered = in_key_order(server, "doc")
    low, high = ordered[40]["id"], ordered[200]["id"]
    inside = get(server, "doc", f"order=id.asc&and=(id.gte.{low},id.lt.{high})").json()
    assert inside == ordered[40:200]
    either = get(server, "doc", f"order=id.asc&or=(id.lt.{low},id.gte.{high})").json()
    assert either == ordered[:40] + ordered[200:]
    mixed = get(server, "doc", f"order=id.desc&id=gt.{low}&n=lt.100&limit=5", Prefer="count=exact")
    expected = [row for row in ordered[41:] if row["n"] < 100]
    assert mixed.json() == expected[::-1][:5] and mixed.headers["Content-Range"] == f"0-4/{len(expected)}"


def test_a_composite_key_reads_in_order_by_keyset_trees_and_bounds(server):
    ordered = in_key_order(server, "pair")
    assert get(server, "pair", "order=w.asc,seq.asc").json() == ordered
    assert get(server, "pair", "order=w.desc,seq.desc").json() == ordered[::-1]
    mixed = get(server, "pair", "order=w.asc,seq.desc").json()  # not the stored order: sorted
    assert [row["w"] for row in mixed] == [row["w"] for row in ordered]
    assert [row["seq"] for row in mixed[:4]] == [4, 3, 2, 1]

    def quoted(value) -> str:
        return requests.utils.quote('"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"', safe="")

    seen, cursor = [], None
    while True:
        after = "" if cursor is None else (
            f"&or=(w.gt.{quoted(cursor['w'])},and(w.eq.{quoted(cursor['w'])},seq.gt.{cursor['seq']}))")
        page = get(server, "pair", f"order=w.asc,seq.asc&limit=3{after}").json()
        if not page:
            break
        seen += page
        cursor = page[-1]
    assert seen == ordered
    start = len(ordered) // 3 - len(ordered) // 3 % 4  # the first pair of a word
    word = requests.utils.quote(ordered[start]["w"], safe="")
    assert get(server, "pair", f"order=w.asc,seq.asc&w=gte.{word}").json() == ordered[start:]
    assert get(server, "pair", f"order=w.desc,seq.desc&w=lt.{word}&seq=gt.2").json() == [
        row for row in ordered[:start][::-1] if row["seq"] > 2]
    probe = get(server, "pair", "select=w,seq&order=w.asc,seq.asc&offset=17&limit=1").json()
    assert probe == [{"w": ordered[17]["w"], "seq": ordered[17]["seq"]}]


def test_a_bad_operand_on_the_key_is_refused_even_on_an_empty_table(start_sandbox):
    server = start_sandbox(tables=[(DOC, [])])
    answer = get(server, "doc", "order=id.asc&id=gt.nope")
    assert answer.status_code == 400 and answer.json()["code"] == "22P02"


def test_the_sample_notes_keyed_by_uuid():
    bigint, keyed = Sandbox(seed=3, users=20, notes=50), Sandbox(seed=3, users=20, notes=50, note_key="uuid")
    assert keyed.definition("note").column("id").type == "uuid"
    assert keyed.definition("user").column("id").type == "bigint"
    ids = [row["id"] for row in keyed.rows("note")]
    assert all(uuid.UUID(value).version == 4 for value in ids)
    assert ids == sorted(ids, key=lambda value: uuid.UUID(value).bytes)  # stored in key order
    assert ids == [row["id"] for row in Sandbox(seed=3, users=20, notes=50, note_key="uuid").rows("note")]
    without_key = sorted(({k: v for k, v in row.items() if k != "id"} for row in keyed.rows("note")), key=repr)
    assert without_key == sorted(({k: v for k, v in row.items() if k != "id"} for row in bigint.rows("note")), key=repr)
    description = keyed.describe(SANDBOX_SERVICE_KEY, "localhost")
    assert description["definitions"]["note"]["properties"]["id"]["format"] == "uuid"
    with pytest.raises(ValueError, match="note_key"):
        Sandbox(users=1, notes=1, note_key="text")


def test_command_line_note_key(tmp_path):
    url_file = tmp_path / "url"
    process = subprocess.Popen([sys.executable, "-m", "wiserock_sandbox.cli", "--users", "5", "--notes", "30",
                                "--note-key", "uuid", "--url-file", str(url_file)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not url_file.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.05)
        server = type("Server", (), {"url": url_file.read_text()})
        rows = get(server, "note", "select=id&order=id.asc").json()
        assert len(rows) == 30 and all(uuid.UUID(row["id"]).version == 4 for row in rows)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert "30 notes keyed by uuid" in output
