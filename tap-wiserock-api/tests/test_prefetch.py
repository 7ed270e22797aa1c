"""Pages read ahead: in key order, within the budget, and the room freed goes to the earliest
range waiting for it (the one the consumer needs next)."""

from __future__ import annotations

import threading
import time

from tap_wiserock_api.prefetch import KeyRange, OrderedPrefetch, Page

RANGES = [KeyRange((n,), (n + 1,), inclusive=n > 0) for n in range(3)]


def test_room_goes_to_the_earliest_waiting_range_and_pages_come_in_key_order():
    handed: list[tuple[int, int]] = []
    lock = threading.Lock()

    def read_range(key_range: KeyRange):
        number = key_range.lower[0]
        if number == 0:
            time.sleep(0.3)  # meanwhile ranges 1 and 2 each hand over a page and wait for room
        for page in range(1 if number == 0 else 3):
            yield Page([{"range": number, "page": page}], 10)
            with lock:
                handed.append((number, page))

    with OrderedPrefetch(RANGES, read_range, workers=3, budget_bytes=20, name="t") as pages:
        taken = [(page.rows[0]["range"], page.rows[0]["page"]) for page in pages]
        time.sleep(0.05)  # the last hand-over's note
    assert taken == [(0, 0), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    # Range 2 waited with a page queued while range 1, needed first, took each room freed.
    assert handed.index((1, 2)) < handed.index((2, 1))
