"""Reading ahead: the next page is asked for while the current one is converted, and a large
table is read as several key ranges at once, with every README behaviour kept."""

from __future__ import annotations

import threading
import time

from tap_wiserock_api import streams
from tap_wiserock_api.tap import TapWiseRockApi
from tests.conftest import assert_same_rows, run_tap, tap_config
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD


def assert_in_key_order_once(records: list[dict]) -> None:
    ids = [record["id"] for record in records]
    assert ids == sorted(set(ids)), "rows repeated or out of key order"


def test_large_table_is_read_in_parallel_ranges_in_key_order(start_sandbox, tmp_path):
    server = start_sandbox(users=100, notes=3000, latency=0.02)
    run = run_tap(tmp_path, tap_config(server, page_size=50, parallel_requests=3))
    assert run.returncode == 0, run.stderr
    assert_same_rows(run.records("note"), server.sandbox.rows("note"))
    assert_in_key_order_once(run.records("note"))
    assert server.sandbox.stats.max_reads_in_flight == 3


def test_one_request_at_a_time_when_parallel_requests_is_1(start_sandbox, tmp_path):
    server = start_sandbox(users=100, notes=3000, latency=0.02)
    run = run_tap(tmp_path, tap_config(server, page_size=50, parallel_requests=1))
    assert run.returncode == 0, run.stderr
    assert_same_rows(run.records("note"), server.sandbox.rows("note"))
    assert server.sandbox.stats.max_reads_in_flight == 1


def test_rows_inserted_and_deleted_during_a_parallel_read(start_sandbox, tmp_path):
    """Rows present for the whole read arrive exactly once, in key order, whatever changes
    in ranges already read, being read or not yet read."""
    server = start_sandbox(users=20, notes=3000)
    box = server.sandbox
    original = box.rows("note")
    doomed = {row["id"] for row in original[5::7]}
    new_rows = [{**original[i], "id": original[i]["id"] + 1} for i in range(len(original) - 1)
                if original[i + 1]["id"] > original[i]["id"] + 1][::9]  # into the gaps, everywhere
    new_rows.append({**original[-1], "id": original[-1]["id"] + 500})  # past the last range's start

    def change_source(sandbox):
        sandbox.delete_rows("note", doomed)
        sandbox.insert_rows("note", new_rows)

    box.faults.on_request[8] = change_source  # after the user table and a few pages of notes
    run = run_tap(tmp_path, tap_config(server, page_size=50, parallel_requests=4))
    assert run.returncode == 0, run.stderr
    emitted = run.records("note")
    assert_in_key_order_once(emitted)
    emitted_ids = {record["id"] for record in emitted}
    assert {row["id"] for row in original if row["id"] not in doomed} <= emitted_ids
    assert emitted_ids <= {row["id"] for row in original + new_rows}
    assert new_rows[-1]["id"] in emitted_ids  # the open-ended last range reads past the old end


def test_expired_token_renewed_once_when_several_requests_see_it(start_sandbox, tmp_path):
    server = start_sandbox(users=20, notes=3000, latency=0.05)
    server.sandbox.faults.on_request[10] = lambda sandbox: sandbox.expire_tokens()
    run = run_tap(tmp_path, tap_config(server, page_size=50, parallel_requests=4))
    assert run.returncode == 0, run.stderr
    assert_same_rows(run.records("note"), server.sandbox.rows("note"))
    assert server.sandbox.stats.statuses[401] >= 1
    assert server.sandbox.stats.logins + server.sandbox.stats.refreshes == 2


def test_transient_faults_during_a_parallel_read_are_retried(start_sandbox, tmp_path):
    server = start_sandbox(users=20, notes=3000, rate_limit_every=7, retry_after=0, error_every=11,
                           error_status=522, drop_every=13)
    run = run_tap(tmp_path, tap_config(server, page_size=50, parallel_requests=4))
    assert run.returncode == 0, run.stderr
    assert_same_rows(run.records("note"), server.sandbox.rows("note"))
    assert_in_key_order_once(run.records("note"))
    assert {429, 522, 0} <= set(server.sandbox.stats.statuses)


def test_next_page_is_requested_before_the_current_page_is_converted(start_sandbox, monkeypatch, capsys):
    """Conversion is made slow (0.3 s a page, timed); each page's request after the first must
    reach the server before the page before it has been converted (the reader may run further ahead)."""
    server = start_sandbox(users=200, notes=0, latency=0.05)
    conversions: list[tuple[float, float]] = []
    convert = streams.convert_page

    def slow_convert(*args, **kwargs):
        started = time.monotonic()
        time.sleep(0.3)
        result = convert(*args, **kwargs)
        conversions.append((started, time.monotonic()))
        return result

    monkeypatch.setattr(streams, "convert_page", slow_convert)
    config = {"api_url": server.url, "api_key": SANDBOX_API_KEY, "email": SANDBOX_EMAIL,
              "password": SANDBOX_PASSWORD, "page_size": 50, "parallel_requests": 1}
    TapWiseRockApi(config=config).sync_all()
    assert capsys.readouterr().out.count('"type":"RECORD"') == 200
    arrivals = server.sandbox.stats.read_arrivals  # 4 user pages, the empty page, the empty note table
    assert len(conversions) == 4
    for page, (_, finished) in enumerate(conversions):
        assert arrivals[page + 1] < finished, f"page {page + 2} was asked for only after page {page + 1} was converted"
    assert not [thread for thread in threading.enumerate() if "-reader-" in thread.name]  # ended with their streams


def test_the_next_table_is_read_while_the_one_before_it_is_emitted(start_sandbox, tmp_path):
    """Its first pages are asked for before the table before it has been read to the end; the
    streams still come out one after another, parents first, each row once."""
    server = start_sandbox(users=1500, notes=1500, latency=0.02)
    tables: list[str] = []
    read = server.sandbox.read

    def recording(table, *args, **kwargs):
        tables.append(table)
        return read(table, *args, **kwargs)

    server.sandbox.read = recording
    run = run_tap(tmp_path, tap_config(server, page_size=50, parallel_requests=4))
    assert run.returncode == 0, run.stderr
    assert_same_rows(run.records("user"), server.sandbox.rows("user"))
    assert_same_rows(run.records("note"), server.sandbox.rows("note"))
    streams = [message["stream"] for message in run.of_type("RECORD")]
    assert streams == sorted(streams, key=["user", "note"].index), "streams interleaved"
    last_user_read = len(tables) - tables[::-1].index("user") - 1
    assert tables.index("note", 2) < last_user_read, "the note table was read only after the user table"
    assert server.sandbox.stats.max_reads_in_flight <= 4
