"""References between CSV streams (a files entry's `references`): parents first, in the catalog
and in every SCHEMA message; a reference or field that does not fit is one line naming it."""

from __future__ import annotations

import pytest

from tap_wiserock_csv.files import FIELDS
from tap_wiserock_csv.tap import TapWiseRockCsv
from tests.conftest import run_tap, write
from tests.test_discovery import discover

ALIAS = {"*": {"__alias__": "'stg_' + __stream_name__"}}
# The child's entry listed first: only its reference puts the parent before it.
FILES = [{"path": "lines.csv", "keys": ["invoice_no", "line"], "references": {"invoice_no": "invoices.no"}},
         {"path": "invoices.csv", "keys": ["no"], "references": {"client": "people.pers_nr"}}]


def ref(column: str, parent: str, parent_column: str) -> dict[str, str]:
    return {"property": column, "parent": parent, "parent_property": parent_column}


@pytest.fixture
def files(folder):
    write(folder, "lines.csv", "invoice_no,line,amount\nA-1,1,2.5\nA-1,2,3\nZ-9,1,4\n")
    write(folder, "invoices.csv", "no,client\nA-1,7\n")
    write(folder, "people.csv", "Pers_Nr,name\n7,Ada\n")
    return folder


def test_references_order_the_streams_and_travel_with_them(files):
    run = run_tap(files, files=FILES, stream_maps=ALIAS)
    assert run.returncode == 0, run.stderr
    assert run.streams == ["stg_people", "stg_invoices", "stg_lines"]
    assert {stream: run.schema(stream)["references"] for stream in run.streams} == {
        "stg_people": [], "stg_invoices": [ref("client", "stg_people", "pers_nr")],
        "stg_lines": [ref("invoice_no", "stg_invoices", "no")]}
    catalog, _ = discover(files, files=FILES)
    assert {entry["tap_stream_id"]: next(item["metadata"]["references"] for item in entry["metadata"]
                                         if item["breadcrumb"] == []) for entry in catalog["streams"]} == {
        "people": [], "invoices": [ref("client", "people", "pers_nr")], "lines": [ref("invoice_no", "invoices", "no")]}


@pytest.mark.parametrize(("entry", "fragment"), [
    ({"path": "lines.csv", "references": {"invoice_no": "invoice.no"}},
     "files entry 'lines.csv': references invoice_no -> invoice.no, but no file makes a stream named 'invoice' "
     "(the streams: lines, invoices, people)"),
    ({"path": "lines.csv", "references": {"invoice": "invoices.no"}},
     "files entry 'lines.csv': references invoice -> invoices.no, but stream 'lines' has no such column (its columns: "
     "invoice_no, line, amount)"),
    ({"path": "lines.csv", "references": {"invoice_no": "invoices.number"}},
     "files entry 'lines.csv': references invoice_no -> invoices.number, but stream 'invoices' has no column 'number' "
     "(its columns: no, client)"),
    ({"path": "lines.csv", "references": {"invoice_no": "invoices"}},
     "files entry 'lines.csv': references must map each column to \"stream.column\" of the stream it references, "
     "e.g. {\"customer_id\": \"customers.id\"}; got {'invoice_no': 'invoices'}"),
    ({"path": "lines.csv", "key": ["line"]},
     "files entry 'lines.csv': unknown field 'key' (the fields are: path, stream, keys, column_types, delimiter, "
     "null_values, duplicate_headers, skip_lines, header, references)"),
])
def test_a_bad_reference_or_field_is_one_line_naming_the_setting(files, entry, fragment):
    run = run_tap(files, files=[entry])
    assert run.returncode == 1 and "Traceback" not in run.stderr and run.messages == []
    assert run.last_error_line == f"tap-wiserock-csv: error: {fragment}"


def test_the_fields_of_an_entry_are_the_settings_declared_ones():
    entry = TapWiseRockCsv.config_jsonschema["properties"]["files"]["items"]["properties"]
    assert tuple(entry) == FIELDS
