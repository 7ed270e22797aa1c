"""The CSV tap's expected failures: each names the file and, where there is one, the line."""


class CsvInputError(Exception):
    """Input the tap refuses rather than load wrong: `data/orders.csv line 12: reason`."""
