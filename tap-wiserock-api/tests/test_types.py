"""The rules discovery applies: PostgreSQL types to column types, types from values, key filters."""

from __future__ import annotations

import decimal

import pytest

from tap_wiserock_api.errors import SourceDataError
from tap_wiserock_api.infer import TableTyping, kind_of
from tap_wiserock_api.keyset import Keyset
from tap_wiserock_api.kinds import ARRAY, BOOLEAN, DATE, DATE_TIME, INTEGER, JSON, NUMBER, STRING, kind_of_format
from tap_wiserock_api.normalize import is_date_time


@pytest.mark.parametrize(("pg_type", "kind"), [
    ("bigint", INTEGER), ("integer", INTEGER), ("smallint", INTEGER), ("numeric", NUMBER), ("numeric(10,2)", NUMBER),
    ("real", NUMBER), ("double precision", NUMBER), ("boolean", BOOLEAN), ("text", STRING),
    ("character varying(255)", STRING), ("character(3)", STRING), ("uuid", STRING), ("date", DATE),
    ("timestamp with time zone", DATE_TIME), ("timestamp(3) without time zone", DATE_TIME),
    ("time without time zone", STRING), ("interval", STRING), ("inet", STRING), ("mood", STRING),
    ("json", JSON), ("jsonb", JSON), ("text[]", ARRAY), ("integer[]", ARRAY), ("timestamp with time zone[]", ARRAY),
])
def test_postgresql_types_map_to_column_types(pg_type, kind):
    assert kind_of_format(pg_type) == kind


def typed(*pages):
    typing = TableTyping("t", ["c"], ["id"])
    changes = [typing.observe([{"id": n, "c": value} for n, value in enumerate(page)]) for page in pages]
    return typing.kinds()["c"], changes


@pytest.mark.parametrize(("values", "kind"), [
    ([True, False, None], BOOLEAN), ([1, -(2**63), 2**63 - 1], INTEGER), ([1, 2**63], NUMBER),
    ([1, decimal.Decimal("0.1")], NUMBER), ([decimal.Decimal("1"), "NaN", "-Infinity"], NUMBER),
    (["2024-02-29", "infinity"], DATE), (["2024-02-30"], STRING),
    (["2024-03-01T10:00:00+02:00", "2024-03-01 10:00Z", "2024-03-01T10:00:00.5-0130", "-infinity"], DATE_TIME),
    (["2024-03-01T10:00:00.1234567+00:00"], STRING),  # PostgreSQL would round the 7th digit: not exact
    (["2024-03-01T10:00:00.1234560+00:00"], DATE_TIME),  # ... unless it is a zero
    (["2024-03-01", "2024-03-01T10:00:00"], STRING), (["10:30:00"], STRING), (["\u0662\u0660\u0662\u0664-03-01"], STRING),
    ([{"a": 1}, None], "object"), ([[1], []], ARRAY), ([{"a": 1}, [1]], JSON), ([1, "x"], JSON), ([True, 1], JSON),
    ([None, None], STRING),
])
def test_a_column_type_holds_every_value(values, kind):
    assert typed(values)[0] == kind


def test_types_widen_exactly_page_by_page():
    kind, changes = typed([None], [1], [decimal.Decimal("0.5")], [{"a": 1}])
    assert kind == JSON
    assert changes == [{}, {"c": INTEGER}, {"c": NUMBER}, {"c": JSON}]
    kind, changes = typed(["2024-01-01T00:00:00Z"], ["n/a"])
    assert (kind, changes) == (STRING, [{}, {}])  # date-times are sent as text: nothing to convert
    kind, changes = typed(["NaN"], [decimal.Decimal("2")])
    assert (kind, changes) == (NUMBER, [{}, {"c": NUMBER}])  # 'NaN' text becomes numeric exactly


@pytest.mark.parametrize("pages", [[["text"], [{"a": 1}]], [["x"], [1]], [[decimal.Decimal(1), "NaN"], [{"a": 1}]]])
def test_a_change_that_cannot_be_exact_is_refused(pages):
    with pytest.raises(SourceDataError, match=r"column c: .* the column holds mixed JSON values"):
        typed(*pages)


def test_kind_of_no_values_is_unknown():
    assert kind_of(set()) is None


def test_composite_key_filters_quote_every_reserved_character():
    keyset = Keyset("t", ("tenant", "seq", "odd name"), (STRING, INTEGER, STRING))
    (name, value), = keyset.after(('a,b.c:(d) "e" \\f', 7, "x"))
    assert name == "or"
    assert value == ('(tenant.gt."a,b.c:(d) \\"e\\" \\\\f",'
                     'and(tenant.eq."a,b.c:(d) \\"e\\" \\\\f",seq.gt."7"),'
                     'and(tenant.eq."a,b.c:(d) \\"e\\" \\\\f",seq.eq."7","odd name".gt."x"))')
    assert keyset.order == 'tenant.asc,seq.asc,"odd name".asc'
    assert Keyset("t", ("id",), (INTEGER,)).after((5,)) == [("id", "gt.5")]


def test_postgrest_timestamps_are_date_times():
    assert is_date_time("2024-03-01T06:30:00.123456+00:00") and is_date_time("2024-03-01T06:30:00")
    assert not is_date_time("2024-13-01T06:30:00+00:00") and not is_date_time("2024-03-01T24:00:00")
