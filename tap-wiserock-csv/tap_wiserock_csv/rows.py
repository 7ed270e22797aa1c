"""What the readers produce: the dialect they read with, blocks of string columns, bad rows."""

from __future__ import annotations

import dataclasses
import typing as t

import pyarrow as pa

from tap_wiserock_csv.errors import CsvInputError

if t.TYPE_CHECKING:
    import numpy as np


@dataclasses.dataclass(frozen=True)
class Dialect:
    """How a file is written: separators, encoding, and where its rows start."""

    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"
    skip_lines: int = 0  # physical lines before the header (title lines), whatever quotes they hold
    header: bool = True  # False: the first row is data; its field count fixes the columns

    def check(self) -> None:
        if len(self.delimiter) != 1 or len(self.quotechar) != 1:
            raise CsvInputError("delimiter and quotechar must be one character each")
        if self.delimiter == self.quotechar or {self.delimiter, self.quotechar} & {"\r", "\n"}:
            raise CsvInputError("delimiter and quotechar must differ and must not be line breaks")

    @property
    def fast(self) -> bool:
        """pyarrow and the byte scan need one-byte (ASCII) delimiter and quote."""
        return self.delimiter.isascii() and self.quotechar.isascii()


@dataclasses.dataclass
class BadRow:
    lineno: int
    reason: str


@dataclasses.dataclass
class Block:
    """Consecutive rows as string columns; null is an empty unquoted field."""

    columns: list[pa.Array]
    lines: np.ndarray  # the physical line each row starts on
    bad_rows: list[BadRow]  # rows the reader refused, in file order
    empty_rows: int = 0  # rows holding only delimiters, passed over

    @property
    def num_rows(self) -> int:
        return len(self.lines)

    def keep(self, mask: np.ndarray) -> Block:
        """The rows where mask is true."""
        selector = pa.array(mask)
        return Block([column.filter(selector) for column in self.columns], self.lines[mask], self.bad_rows,
                     self.empty_rows)
