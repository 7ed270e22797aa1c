"""`meltano run` of each tap into PostgreSQL, checked with SQL."""

from __future__ import annotations

import csv
import datetime as dt

from elt.settings import PROJECT_DIR
from tests.conftest import batch_files, meltano, pipeline_env

# Lower-cased source spellings; as dict keys, 1 and 0 are True and False.
EXPECTED_FLAG = {True: True, "y": True, "yes": True, "true": True, "t": True,
                 False: False, "n": False, "no": False, "false": False, "f": False, None: None}


def flag(value):
    return EXPECTED_FLAG[value.lower() if isinstance(value, str) else value]


def instant(text: str) -> dt.datetime:
    """The instant a source timestamp means (one without an offset is UTC)."""
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def load_api(warehouse, sandbox, **extra):
    return meltano("run", "tap-wiserock-api", "target-postgres", env=pipeline_env(warehouse, sandbox, **extra))


def test_api_tables_match_the_source(warehouse, sandbox):
    sandbox.sandbox.faults.max_rows = 250  # the server's cap below page_size, as a real project may have
    files_before = batch_files()
    result = load_api(warehouse, sandbox)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"metric":"batch_count"' in result.stderr  # the project's environment sends BATCH files ...
    assert batch_files() == files_before  # ... and the loader deletes them once loaded
    users, notes = sandbox.sandbox.rows("user"), sandbox.sandbox.rows("note")
    assert warehouse.ids("stg_wiserock_user") == [row["id"] for row in users]
    assert warehouse.ids("stg_wiserock_note") == [row["id"] for row in notes]

    types = warehouse.column_types("stg_wiserock_note")
    assert types["id"] == "bigint" and types["user_id"] == "bigint"
    assert types["activeflag"] == "boolean" and types["body"] == "text"
    assert types["created_at"] == "timestamp with time zone"

    loaded = {row[0]: row[1:] for row in warehouse.query(
        "select id, user_id, title, body, activeflag, created_at, updated_at from stg_wiserock_note")}
    for row in notes:
        assert loaded[row["id"]] == (row["user_id"], row["title"].replace("\x00", ""), row["body"].replace("\x00", ""),
                                     flag(row["activeflag"]), instant(row["created_at"]), instant(row["updated_at"]))
    assert any("\x00" in row["body"] for row in notes)  # the sample really had NUL characters
    assert warehouse.query("select count(*) from stg_wiserock_note where strpos(body, chr(65533)) > 0") == [(0,)]
    assert any(len(row["body"]) > 100_000 for row in notes)


def test_csv_tables_match_the_files(warehouse):
    result = meltano("run", "tap-wiserock-csv", "target-postgres", env=pipeline_env(warehouse, None))
    assert result.returncode == 0, result.stderr[-3000:]
    for file, table in [("Customers.csv", "stg_wiserock_csv_customers"), ("Orders.csv", "stg_wiserock_csv_orders"),
                        ("Order Items.CSV", "stg_wiserock_csv_order_items")]:
        with (PROJECT_DIR / "data" / file).open(encoding="utf-8-sig", newline="") as handle:
            assert warehouse.count(table) == sum(1 for _ in csv.reader(handle)) - 1
    types = warehouse.column_types("stg_wiserock_csv_customers")
    assert (types["id"], types["zip_code"], types["active_flag"], types["signup_date"]) == ("bigint", "text", "boolean", "date")
    assert types["created_at"] == "timestamp with time zone" and types["credit_limit"] == "numeric"
    zips = [row[0] for row in warehouse.query("select zip_code from stg_wiserock_csv_customers")]
    assert any(z.startswith("0") and len(z) == 5 for z in zips)  # leading zeros kept


def test_rerun_leaves_the_same_rows(warehouse, sandbox):
    assert load_api(warehouse, sandbox).returncode == 0
    checksum = ("select md5(string_agg(t::text, '|' order by id)) "
                "from (select id, email, activeflag, created_at from stg_wiserock_user) t")
    before = warehouse.query(checksum)
    counts = (warehouse.count("stg_wiserock_user"), warehouse.count("stg_wiserock_note"))
    assert load_api(warehouse, sandbox).returncode == 0
    assert warehouse.query(checksum) == before
    assert (warehouse.count("stg_wiserock_user"), warehouse.count("stg_wiserock_note")) == counts


def test_rows_deleted_at_the_source_are_gone_after_the_next_run(warehouse, sandbox):
    assert load_api(warehouse, sandbox).returncode == 0
    doomed = [row["id"] for row in sandbox.sandbox.rows("note")[::10]]
    sandbox.sandbox.delete_rows("note", doomed)
    result = meltano("run", "wiserock-report:snapshot", "tap-wiserock-api", "target-postgres", "wiserock-report:summary",
                     env=pipeline_env(warehouse, sandbox))
    assert result.returncode == 0, result.stderr[-3000:]
    assert warehouse.ids("stg_wiserock_note") == [row["id"] for row in sandbox.sandbox.rows("note")]
    output = (result.stdout + result.stderr).splitlines()
    (summary,) = [line.split() for line in output if "wiserock-report" in line and " stg_wiserock_note " in line]
    assert summary[-3:] == [str(len(sandbox.sandbox.rows("note"))), "0", str(len(doomed))]  # rows, added, deleted


def test_api_down_midway_changes_no_table_and_the_next_run_converges(warehouse, sandbox):
    box = sandbox.sandbox
    assert load_api(warehouse, sandbox).returncode == 0
    good = {table: warehouse.fingerprint(table) for table in ("stg_wiserock_user", "stg_wiserock_note")}
    # The source changes, then the API goes down in the middle of the note table, after the
    # user stream has completed: one run, one commit, so the user table must not change either.
    box.delete_rows("note", [row["id"] for row in box.rows("note")[:100]])
    box.delete_rows("user", [row["id"] for row in box.rows("user")[-5:]])
    reads_so_far = box.stats.reads
    # Reads (pages of 200): Meltano's discovery reads each table's first page, the tap's sync does
    # again (it sees the tables as they are now), then user's second page and its empty page, then
    # note's second and third pages: the API goes down at the fourth.
    box.faults.on_request[reads_so_far + 9] = lambda sandbox: setattr(sandbox.faults, "error_every", 1)
    files_before = batch_files()
    failed = load_api(warehouse, sandbox, TAP_WISEROCK_API_MAX_ATTEMPTS="2", TAP_WISEROCK_API_PAGE_SIZE="200")
    assert failed.returncode != 0
    assert batch_files() == files_before  # the loader deletes what it was sent, the tap what it had not sent
    assert "HTTP 503" in failed.stderr
    (loader_line,) = [line for line in failed.stderr.splitlines() if "target-wiserock-postgres: error:" in line]
    assert "stg_wiserock_note" in loader_line and "stg_wiserock_user" not in loader_line  # names what did not complete
    assert {table: warehouse.fingerprint(table) for table in good} == good
    box.faults.error_every = 0
    assert load_api(warehouse, sandbox).returncode == 0
    assert warehouse.ids("stg_wiserock_user") == [row["id"] for row in box.rows("user")]
    assert warehouse.ids("stg_wiserock_note") == [row["id"] for row in box.rows("note")]
