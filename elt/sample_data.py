"""Writes data/: the WiseRock CSV sample, messy the way real exports are.

Three related files (customers <- orders <- order items) with a BOM, CRLF line ends,
quoted newlines and quotes, CamelCase and spaced headers, every flag spelling, NULL
markers and zip codes or SKUs with leading zeros. Deterministic: `python -m elt.sample_data`.
"""

from __future__ import annotations

import csv
import datetime as dt
import pathlib
import random

FLAG_WORDS = ("Y", "N", "yes", "no", "TRUE", "false", "t", "F", "y", "No", "True", "f")
CITIES = ("Zürich", "São Paulo", "Kraków", "Reykjavík", "New York, NY", "O'Fallon", "Québec")
WORDS = ("granite", "quartz", "core", "sample", "drill", "assay", "shale", "basalt", "survey")


def _note(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return "NULL"
    if kind == 1:
        return ""
    if kind == 2:
        return f'Said "{rng.choice(WORDS)}",\nthen left'  # quotes, comma and a newline
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 6)))


def _write(path: pathlib.Path, header: list[str], rows: list[list[str]], *, bom: bool, crlf: bool) -> None:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n" if crlf else "\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_sample(folder: pathlib.Path, seed: int = 2024) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    start = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)

    customer_ids = sorted(rng.sample(range(1, 900), 500))
    customers = []
    for customer_id in customer_ids:
        created = start + dt.timedelta(minutes=rng.randrange(0, 900_000))
        offset = dt.timezone(dt.timedelta(hours=rng.choice((-5, 0, 1, 2, 9))))
        customers.append([
            str(customer_id),
            rng.choice(("Ana", "Zoë", "José", "Li", "Sam")) + " " + rng.choice(("Smith", "Müller", "O'Neil")),
            f"c{customer_id}@example.com" if customer_id % 17 else "NULL",
            f"{rng.randrange(0, 99999):05d}",  # zip codes keep their leading zeros
            rng.choice(FLAG_WORDS),
            created.astimezone(offset).isoformat(),
            (created.date() + dt.timedelta(days=rng.randrange(0, 30))).isoformat(),
            f"{rng.randrange(0, 500000) / 100:.2f}",
            rng.choice(CITIES),
            _note(rng),
        ])
    _write(folder / "Customers.csv",
           ["ID", "CustomerName", "E-mail Address", "ZipCode", "ActiveFlag", "createdAt",
            "Signup Date", "Credit Limit", "City", "Notes"],
           customers, bom=True, crlf=True)

    orders, order_ids = [], sorted(rng.sample(range(10_000, 99_999), 1500))
    for order_id in order_ids:
        shipped = start + dt.timedelta(minutes=rng.randrange(0, 900_000))
        orders.append([
            str(order_id),
            str(rng.choice(customer_ids)),
            (start.date() + dt.timedelta(days=rng.randrange(0, 700))).isoformat(),
            f"{rng.randrange(100, 10_000_000) / 100}",
            rng.choice(("0", "1")),
            rng.choice(("shipped", "pending", "NULL", "null", "")),
            shipped.strftime("%Y-%m-%d %H:%M:%S") if order_id % 5 else "",
        ])
    _write(folder / "Orders.csv",
           ["OrderID", "CustomerID", "OrderDate", "Total", "IsGift", "Status", "shippedAt"],
           orders, bom=False, crlf=False)

    items = [
        [
            str(item_id),
            str(rng.choice(order_ids)),
            f"{rng.randrange(0, 5000):06d}",  # SKUs with leading zeros stay text
            str(rng.randrange(1, 20)),
            rng.choice(("1e1", "2.5", "19.99", "-0.5", "3")),
            rng.choice(("0", "1")),
            _note(rng),
        ]
        for item_id in range(1, 4001)
    ]
    _write(folder / "Order Items.CSV",
           ["id", "order_id", "SKU", "Qty", "Unit Price", "backorder_flag", "Comment"],
           items, bom=False, crlf=True)


if __name__ == "__main__":
    write_sample(pathlib.Path(__file__).resolve().parent.parent / "data")
