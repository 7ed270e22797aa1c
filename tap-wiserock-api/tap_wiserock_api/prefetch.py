"""Reading key ranges in background threads and handing their pages over in key order.

Each key range is read by one thread with keyset paging, one request at a time: the thread
asks for its next page as soon as it has the current one, while the consumer converts pages.
Several ranges are read at once when the stream splits the table (`parallel_requests`), which
is what hides a remote server's latency. The consumer sees pages strictly in key order.

Memory stays bounded: pages waiting for the consumer may hold at most `budget_bytes` of
response bodies, except that every range may always hold one page (so the range the consumer
waits for can always make progress and no thread waits for another forever).
"""

from __future__ import annotations

import dataclasses
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

Row = dict[str, t.Any]


@dataclasses.dataclass(frozen=True)
class KeyRange:
    """Keys after `lower` (a key's values; None: from the first), or from it when `inclusive`, and
    before `upper` (None: to the last). A table's ranges are disjoint and cover every key."""

    lower: tuple[t.Any, ...] | None
    upper: tuple[t.Any, ...] | None
    inclusive: bool = False


@dataclasses.dataclass
class Page:
    rows: list[Row]
    size: int  # bytes of the response body: what the prefetch budget counts


class _Slot:
    """The pages one range has read and the consumer has not yet taken."""

    def __init__(self) -> None:
        self.pages: list[Page] = []
        self.done = False


class OrderedPrefetch:
    """Runs `read_range` for each range in up to `workers` daemon threads, yields pages in order.

    Use as a context manager: leaving it (normally, or through an exception in the consumer)
    stops the threads; they are daemons, so a request still in flight never holds up the exit.
    A failure in any thread is raised in the consumer at its next page.
    """

    def __init__(self, ranges: Sequence[KeyRange], read_range: Callable[[KeyRange], Iterator[Page]], *,
                 workers: int, budget_bytes: int, name: str) -> None:
        self._ranges = list(ranges)
        self._read_range = read_range
        self._budget = budget_bytes
        self._slots = [_Slot() for _ in self._ranges]
        self._buffered = 0
        self._waiting: set[int] = set()  # ranges whose reader waits for room in the budget
        self._next_range = 0  # the next range a free thread takes
        self._failure: BaseException | None = None
        self._stopped = False
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-reader-{n}", daemon=True)
                         for n in range(min(workers, len(self._ranges)))]

    def __enter__(self) -> OrderedPrefetch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def __iter__(self) -> Iterator[Page]:
        for slot in self._slots:
            while True:
                with self._changed:
                    while not slot.pages and not slot.done and self._failure is None:
                        self._changed.wait()
                    if self._failure is not None:
                        raise self._failure
                    if not slot.pages:
                        break
                    page = slot.pages.pop(0)
                    self._buffered -= page.size
                    self._changed.notify_all()
                yield page

    # -- reader threads --------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._changed:
                # Ranges start in order, so the range the consumer waits for is always running.
                if self._stopped or self._next_range >= len(self._ranges):
                    return
                index = self._next_range
                self._next_range += 1
            try:
                for page in self._read_range(self._ranges[index]):
                    if not self._hand_over(index, page):
                        return
            except BaseException as exc:  # handed to the consumer, which raises it
                with self._changed:
                    self._failure = self._failure or exc
                    self._changed.notify_all()
                return
            with self._changed:
                self._slots[index].done = True
                self._changed.notify_all()

    def _hand_over(self, index: int, page: Page) -> bool:
        """Wait for room in the budget, then queue the page; False once the consumer is gone."""
        slot = self._slots[index]
        with self._changed:
            # A range with no page waiting never waits: the consumer may be waiting for it.
            # Room goes to the earliest range waiting for it: the consumer needs that one first
            # (with many readers, room taken by later ranges left the next range one page deep).
            self._waiting.add(index)
            while not self._stopped and slot.pages and (
                    self._buffered + page.size > self._budget or index > min(self._waiting)):
                self._changed.wait()
            self._waiting.discard(index)
            self._changed.notify_all()
            if self._stopped:
                return False
            slot.pages.append(page)
            self._buffered += page.size
            self._changed.notify_all()
            return True
