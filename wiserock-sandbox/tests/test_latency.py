"""`--latency-ms` makes every answer arrive that much later, as from a remote project,
without serializing concurrent requests (the handler sleeps, it does not compute)."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import time

import requests

from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD


def login(url: str) -> str:
    answer = requests.post(f"{url}/auth/v1/token", params={"grant_type": "password"}, headers={"apikey": SANDBOX_API_KEY},
                           json={"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD}, timeout=10)
    return answer.json()["access_token"]


def timed_read(url: str, token: str) -> float:
    started = time.monotonic()
    answer = requests.get(f"{url}/rest/v1/user?select=id&order=id.asc&limit=5", timeout=10,
                          headers={"apikey": SANDBOX_API_KEY, "Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and len(answer.json()) == 5
    return time.monotonic() - started


def test_latency_delays_every_answer_and_concurrent_requests_overlap(start_sandbox):
    latency = 0.4
    server = start_sandbox(users=20, notes=5, latency=latency)
    started = time.monotonic()
    token = login(server.url)
    assert time.monotonic() - started >= latency  # the login too: every round trip pays it
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        durations = list(pool.map(lambda _: timed_read(server.url, token), range(4)))
        together = time.monotonic() - started
    assert min(durations) >= latency
    assert together < 2 * latency  # four sleeping handlers at once, not one after another


def test_command_line_latency_option(tmp_path):
    url_file = tmp_path / "url"
    process = subprocess.Popen([sys.executable, "-m", "wiserock_sandbox.cli", "--users", "10", "--notes", "10",
                                "--latency-ms", "300", "--url-file", str(url_file)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not url_file.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.05)
        url = url_file.read_text()
        token = login(url)
        assert timed_read(url, token) >= 0.3
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert "latency 300 ms" in output


def test_reads_in_flight_are_counted(start_sandbox):
    server = start_sandbox(users=20, notes=5, latency=0.3)
    token = login(server.url)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: timed_read(server.url, token), range(3)))
    assert server.sandbox.stats.max_reads_in_flight == 3
    assert server.sandbox.stats.reads_in_flight == 0
