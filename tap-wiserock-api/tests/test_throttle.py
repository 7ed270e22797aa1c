"""The tap's in-flight limit: halved once per burst of 429/503, paused for Retry-After, grown
back one slot per round of successes after a quiet period, never above the setting."""

from __future__ import annotations

import threading

from tap_wiserock_api.throttle import InFlightLimit, retry_after_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_push_backs_halves_the_slots_once_and_quiet_successes_grow_them_back():
    clock = Clock()
    gate = InFlightLimit(8, quiet_seconds=2, clock=clock)
    with gate.slot() as first, gate.slot() as second:
        pass
    gate.pushed_back(first, None)
    gate.pushed_back(second, None)  # sent before the cut: the same burst
    assert gate.allowed == 4
    with gate.slot() as third:
        pass
    gate.pushed_back(third, None)  # sent after it: the server still pushes back
    assert gate.allowed == 2
    for _ in range(10):
        gate.succeeded()
    assert gate.allowed == 2  # not within the quiet period
    clock.now += 2
    for _ in range(2 + 3 + 4 + 5 + 6 + 7 + 20):
        gate.succeeded()
    assert gate.allowed == 8  # one slot per round, up to the setting


def test_no_more_requests_in_flight_than_the_slots():
    gate = InFlightLimit(3)
    release = threading.Event()
    seen: list[int] = []

    def hold() -> None:
        with gate.slot():
            seen.append(gate.in_flight)
            release.wait(5)

    threads = [threading.Thread(target=hold) for _ in range(6)]
    for thread in threads:
        thread.start()
    while gate.in_flight < 3:
        pass
    assert gate.in_flight == 3
    release.set()
    for thread in threads:
        thread.join()
    assert gate.most_in_flight == 3 and max(seen) == 3 and len(seen) == 6


def test_retry_after_holds_new_requests():
    gate = InFlightLimit(4)
    with gate.slot() as ticket:
        pass
    gate.pushed_back(ticket, 0.3)
    started = threading.Event()

    def send() -> None:
        with gate.slot():
            started.set()

    thread = threading.Thread(target=send)
    thread.start()
    assert not started.wait(0.2)
    assert started.wait(2)
    thread.join()


def test_retry_after_header_forms():
    assert retry_after_seconds("3") == 3 and retry_after_seconds(" 0 ") == 0
    assert retry_after_seconds(None) is None and retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
