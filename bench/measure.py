"""Timing a command, sampling the peak RSS of each process in its tree, and the table rows."""

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


def run_measured(command: list[str], *, labels: t.Sequence[str], env: dict[str, str], cwd: str,
                 include_root: bool = False, root_label: str | None = None) -> Measurement:
    """Run `command`; every 50 ms, note the RSS of descendants (and of the command itself with
    `include_root`) whose command line names a label, and the command's own under `root_label`."""
    peaks = dict.fromkeys([*labels, *([root_label] if root_label else [])], 0.0)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                children = root.children(recursive=True) + ([root] if include_root else [])
                if root_label:
                    peaks[root_label] = max(peaks[root_label], root.memory_info().rss / 2**20)
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


@dataclasses.dataclass
class Row:
    """One line of the results table: a path, its size and time, against its ceiling's rows/s."""

    path: str
    rows: int
    seconds: float
    ceiling: float | None = None  # rows/s of the path's ceiling; None: this row is the ceiling
    rss: str = "-"

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    def cells(self) -> list[str]:
        share = f"{self.rate / self.ceiling:.3f}" if self.ceiling else "1.000"
        return [self.path, f"{self.rows:,}", f"{self.seconds:.1f}", f"{self.rate:,.0f}", share, self.rss]


def markdown_table(rows: t.Sequence[Row], *, share_header: str = "share of ceiling") -> str:
    header = ["path", "rows", "seconds", "rows/s", share_header, "peak RSS MB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)
