"""The fast reader (pyarrow + quote scan) gives exactly what Python's strict csv gives, or hands over to it."""

from __future__ import annotations

import csv
import io
import random
import typing as t

import pytest

from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.reader import CsvReader
from tap_wiserock_csv.rows import Dialect

if t.TYPE_CHECKING:
    import pathlib

MALFORMED = [
    b'a,b\n1,"abc"def\n2,x\n',  # text after a closing quote
    b'a,b\n1,"never closed\n2,x\n',  # a quote left open to the end of the file
    b'a,b\n1,ab"c\n2,x\n',  # a quote inside an unquoted field (legal for Python, unusual)
    b'a,b\n1, "x"\n',  # a space before an opening quote
    b'a,b\n1,"x" \n',  # a space after a closing quote
    b'a,b\n1\n2,3,4\n5,6\n',  # field counts
    b'a,b\n1,caf\xe9\n2,ok\n',  # not UTF-8
    b'a,b\n,,\n1,2\n,\n',  # rows of only delimiters
    b'a,b\r1,2\r\r3,"x\ry"\r',  # lone CR line ends, a CR inside quotes
    b'\xef\xbb\xbfa,b\r\n1,"two\r\nlines"\r\n\r\n2,""\r\n3,"",',  # BOM, CRLF, quoted empties, no final line end
    b'a,b\n1,"a""b"\n2,""""\n3,"",x\n',  # doubled quotes
    b'a\n\n\n1\n""\n',  # one column: blank lines, a quoted empty field
    b'a,b\n1,x\x00y\n',  # NUL
]


def read(path: pathlib.Path, *, exact: bool, chunk_bytes: int = 1 << 20, dialect: Dialect | None = None,
         ) -> tuple[t.Any, ...]:
    try:
        reader = CsvReader(path, dialect or Dialect(), label="x", exact=exact, chunk_bytes=chunk_bytes)
    except CsvInputError as exc:  # a header that is not one clean row
        return (str(exc),)
    rows, bad, empty = [], [], 0
    if reader.header is not None:
        for block in reader.blocks():
            columns = [column.to_pylist() for column in block.columns]
            rows += [(line, *values) for line, *values in zip(block.lines.tolist(), *columns, strict=True)]
            bad += [(row.lineno, row.reason) for row in block.bad_rows]
            empty += block.empty_rows
    return reader.header, reader.header_line, rows, bad, empty


@pytest.mark.parametrize("content", MALFORMED)
def test_malformed_and_unusual_input_reads_the_same_through_both_readers(tmp_path, content):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    expected = read(path, exact=True)
    for chunk_bytes in (1 << 20, 5, 1):  # one buffer, and buffers cut anywhere
        assert read(path, exact=False, chunk_bytes=chunk_bytes) == expected


def test_random_files_read_the_same_through_both_readers(tmp_path):
    values = ["a", "", "x y", 'say "hi"', "l1\nl2", "l1\r\nl2", "cr\ronly", ",", "é", '"', "  "]
    rng = random.Random(20261126)
    path = tmp_path / "x.csv"
    fast_only = 0
    for _ in range(300):
        width = rng.randint(1, 4)
        text = io.StringIO()
        terminator = rng.choice(["\n", "\r\n", "\r"])
        writer = csv.writer(text, lineterminator=terminator, quoting=rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
        writer.writerow([f"h{i}" for i in range(width)])
        for _ in range(rng.randint(0, 25)):
            roll = rng.random()
            if roll < 0.05:
                text.write(terminator)
            elif roll < 0.1:
                text.write("," * (width - 1 + rng.randint(0, 1)) + terminator)
            else:
                writer.writerow([rng.choice(values) for _ in range(width + (rng.random() < 0.03))])
        data = text.getvalue().encode()
        if rng.random() < 0.15:  # one stray byte anywhere
            position = rng.randrange(len(data))
            data = data[:position] + rng.choice([b'"', b"\xe9", b"\r", b"\n", b","]) + data[position:]
        path.write_bytes(data)
        expected = read(path, exact=True)
        for chunk_bytes in (1 << 20, 7):
            assert read(path, exact=False, chunk_bytes=chunk_bytes) == expected, data
        if len(expected) > 1:
            reader = CsvReader(path, Dialect(), label="x")
            list(reader.blocks())
            fast_only += reader.exact_from is None
    assert fast_only > 100  # the comparison covered the fast reader, not only its hand-over


def test_the_exact_reader_takes_over_where_the_fast_one_stops(tmp_path):
    rows = "".join(f"{i},v{i}\n" for i in range(1, 20_000))
    path = tmp_path / "x.csv"
    path.write_bytes(f"id,v\n{rows}20000,\"bad\"x\n20001,last\n".encode())
    reader = CsvReader(path, Dialect(), label="x", chunk_bytes=64 * 1024)
    blocks = list(reader.blocks())
    assert reader.exact_from is not None and reader.exact_from > 2  # the first buffers were read fast
    assert sum(block.num_rows for block in blocks) == 20_000
    assert [(row.lineno, row.reason) for block in blocks for row in block.bad_rows] == [
        (20_001, "malformed CSV: ',' expected after '\"'")]


# Title lines above the header: an odd quote, a quoted line break, CRLF, lone CRs, a blank line.
TITLES = [b"Report\n", b'Sales "Q3,2026\r\n"multi\nline",x\r\n\r\n', b"title\r", b"a\rb\r\n,,\n"]
BOM = b"\xef\xbb\xbf"


def _shifted(result: tuple[t.Any, ...], lines: int) -> tuple[t.Any, ...]:
    header, header_line, rows, bad, empty = result
    return (header, header_line + lines, [(line + lines, *values) for line, *values in rows],
            [(line + lines, reason) for line, reason in bad], empty)


@pytest.mark.parametrize("title", TITLES)
@pytest.mark.parametrize("content", MALFORMED)
def test_skip_lines_passes_over_physical_lines_the_same_way_in_both_readers(tmp_path, content, title):
    """The file with title lines reads as the file without them, line numbers shifted by the title's lines."""
    plain = tmp_path / "plain.csv"
    plain.write_bytes(content)
    bom = BOM if content.startswith(BOM) else b""  # a byte-order mark comes first, before any title
    path = tmp_path / "titled.csv"
    path.write_bytes(bom + title + content[len(bom):])
    lines = title.count(b"\n") + title.count(b"\r") - title.count(b"\r\n")
    expected = _shifted(read(plain, exact=True), lines)
    for exact in (True, False):
        for chunk_bytes in (1 << 20, 5, 1):  # chunks cut anywhere, a CRLF between two of them too
            assert read(path, exact=exact, chunk_bytes=chunk_bytes, dialect=Dialect(skip_lines=lines)) == expected


@pytest.mark.parametrize("content", MALFORMED)
def test_without_a_header_the_first_row_is_data_the_same_way_in_both_readers(tmp_path, content):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    header, header_line, rows, bad, empty = read(path, exact=True)
    first, *rest = read(path, exact=True, dialect=Dialect(header=False))[2] or [None]
    assert first is not None and first[0] == header_line
    assert [value or "" for value in first[1:]] == header  # the header's fields, now a row with its nulls
    assert rest == rows
    expected = read(path, exact=True, dialect=Dialect(header=False))
    assert expected[3:] == (bad, empty)
    for chunk_bytes in (1 << 20, 5, 1):
        assert read(path, exact=False, chunk_bytes=chunk_bytes, dialect=Dialect(header=False)) == expected
