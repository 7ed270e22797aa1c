"""How many requests the tap has in flight: at most `parallel_requests`, fewer after the server
pushes back.

Every request of a run (every stream's reader threads and its boundary probes) takes a slot
here, so the setting bounds the whole tap, not each thread. A 429 or 503 halves the slots
(once per burst: answers to requests sent before the cut do not cut again) and holds every new
request until its `Retry-After` has passed; the slots grow back by one per round of successful
answers (as many answers as there are slots), once `quiet_seconds` have passed since the last
cut. This is additive increase, multiplicative decrease: a hosted project's request limits are
respected without a fixed low setting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PUSH_BACK_STATUSES = frozenset({429, 503})
QUIET_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class Ticket:
    """A request's slot: `generation` tells which cut it was sent after."""

    generation: int


class InFlightLimit:
    """A counting gate whose size adapts to the server's answers; safe across threads."""

    def __init__(self, limit: int, *, quiet_seconds: float = QUIET_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.allowed = limit  # slots now
        self.in_flight = 0
        self.most_in_flight = 0
        self._quiet = quiet_seconds
        self._clock = clock
        self._generation = 0
        self._successes = 0
        self._last_cut = -float("inf")
        self._resume_at = 0.0  # no new request before this (the server's Retry-After)
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def slot(self) -> Iterator[Ticket]:
        """Wait for a free slot (and for any Retry-After), hold it while the request is sent."""
        with self._changed:
            while True:
                pause = self._resume_at - self._clock()
                if pause <= 0 and self.in_flight < self.allowed:
                    break
                self._changed.wait(timeout=pause if pause > 0 else None)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            ticket = Ticket(self._generation)
        try:
            yield ticket
        finally:
            with self._changed:
                self.in_flight -= 1
                self._changed.notify_all()

    def pushed_back(self, ticket: Ticket, retry_after: float | None) -> None:
        """A 429 or 503: fewer slots, and no new request before `retry_after` seconds."""
        with self._changed:
            now = self._clock()
            if retry_after:
                self._resume_at = max(self._resume_at, now + retry_after)
            if ticket.generation == self._generation:  # the first answer of a burst cuts; the rest were sent before it
                self.allowed = max(1, self.allowed // 2)
                self._generation += 1
                self._successes = 0
                self._last_cut = now
            self._changed.notify_all()

    def succeeded(self) -> None:
        """An answer that was not pushed back: a round of them (and a quiet period) adds a slot."""
        with self._changed:
            if self.allowed >= self.limit:
                return
            self._successes += 1
            if self._successes >= self.allowed and self._clock() - self._last_cut >= self._quiet:
                self.allowed += 1
                self._successes = 0
                self._changed.notify_all()


def retry_after_seconds(header: str | None) -> float | None:
    """The Retry-After header's seconds (the form PostgREST, Kong and Cloudflare send), else None."""
    return float(header) if header is not None and header.strip().isdigit() else None
