"""Timing a command and sampling the peak RSS of each process in its tree."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
import typing as t

import psutil


@dataclasses.dataclass
class Measurement:
    seconds: float
    peak_rss_mb: dict[str, float]  # by process label
    returncode: int
    output: str


def run_measured(command: list[str], *, labels: t.Sequence[str], env: dict[str, str], cwd: str) -> Measurement:
    """Run `command`; every 50 ms, note the RSS of descendants whose command line names a label."""
    peaks = dict.fromkeys(labels, 0.0)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                children = root.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for child in children:
                try:
                    cmdline = " ".join(child.cmdline())
                    rss = child.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                if "bin/meltano" in cmdline:  # Meltano's own process names both plugins
                    continue
                for label in labels:
                    if label in cmdline:
                        peaks[label] = max(peaks[label], rss)
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return Measurement(seconds, peaks, process.returncode, output)
