"""`make bench-large`: the CSV path at 10,000,000 rows against COPY of the same file, and memory at 1M and 10M.

In one run, into the local PostgreSQL (as `make bench`: DB_HOST, else 127.0.0.1:5432, else an
embedded server), on the bench's 9-column CSV at 1,000,000 rows and at 10,000,000 rows (the
same rows repeated with new ids, written in seconds):
- COPY of the large file into the typed table with its primary key (the staging table has one),
  the median of three runs: the ceiling every share is against;
- the CSV tap alone: discovery (a sample of the file, as Meltano runs it; and with sample_bytes 0,
  the first pass over every value the tap made before issue 24), its sync writing parquet batch
  files with the sampled plan (every value checked), and again with the plan that sync cached;
- the loader alone fed the tap's parquet batch files: a first run (new table) and a second run
  of the same rows (unchanged), with its merge step's time from its log;
- `meltano run tap-wiserock-csv target-postgres`: a first load (empty schema, no cached plan)
  and a second run with the file unchanged, the median of three runs of each on the large file,
  with the sample's, the loader's and the merge's time from the log;
- the cost of a type change the sample did not see, one first load each on the large file with
  1,000 rows 100,000 rows before its end changed: `score` holding `n/a` (the column widens to
  text, and the loader converts the rows it holds), and `activeflag` holding `maybe` (the rows
  sent held booleans: the tap types the file by a first pass and sends it again);
- the peak RSS of every process at both sizes, and how much it grew.
Writes bench/results-large.md. The 10M-row file, the recorded batch files and the bench
schemas are removed at the end. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import typing as t

from psycopg import sql

from bench import csv_paths, loader
from bench.data import write_csv, write_large_csv
from bench.measure import Row, markdown_table, run_measured
from elt.database import scratch_server_env, stop_embedded
from elt.settings import PROJECT_DIR

if t.TYPE_CHECKING:
    import pathlib

OUT = PROJECT_DIR / "bench" / "out"
RESULTS = PROJECT_DIR / "bench" / "results-large.md"
BASE_ROWS = 1_000_000  # written row by row once; larger files repeat its rows
TAP = csv_paths.TAP
# What the processes log: the tap's sample or first pass, the loader's merge and its whole run, a
# SCHEMA change the rows loaded follow, and a stream sent again.
_TYPED = re.compile(r"Typed \S+ from (?:its content|a sample of .*?\)) in ([\d.]+) s")
_SAMPLED = re.compile(r"Typed \S+ from a sample of .*?\) in ([\d.]+) s")
_FIRST_PASS = re.compile(r"Typed \S+ from its content in ([\d.]+) s")
_FOLLOWED = re.compile(r"rows loaded so far follow the SCHEMA change in ([\d.]+) s")
_DROPPED = re.compile(r"the ([\d,]+) rows of version \S+ received before are dropped")
# Rows whose column changes type, 100,000 rows before the end of the large file: past the
# sample's last 8 MB (70,000 rows) and between two of its spans.
LATE_ROWS, LATE_FROM_END = 1_000, 100_000
LATE_CHANGES = {"score becomes text (exact: the loader converts the rows it holds)": ("score", "n/a"),
                "activeflag holds maybe (not exact: a first pass, then the stream again)": ("activeflag", "maybe")}
_MERGED = re.compile(r"\S+: (?:diff by key|replaced whole) in ([\d.]+) s")
_COMMITTED = re.compile(r"Committed \d+ tables?, [\d,]+ rows? in ([\d.]+) s")
_UNCHANGED = re.compile(r"\S+: unchanged since the last run: not merged")


def _logged(pattern: re.Pattern[str], output: str) -> str:
    found = pattern.findall(output)
    return f"{float(found[-1]):.1f}" if found else "-"


def _merge(output: str) -> str:
    """The merge's part of a row's label: its time, or that the loader skipped it (table unchanged)."""
    if (seconds := _logged(_MERGED, output)) != "-":
        return f"merge {seconds} s"
    return "merge skipped (unchanged)" if _UNCHANGED.search(output) else ""


class Memory:
    """Peak RSS of each process at each size."""

    def __init__(self, sizes: tuple[int, int]) -> None:
        self.sizes = sizes
        self.peaks: dict[str, dict[int, float]] = {}

    def note(self, process: str, rows: int, megabytes: float) -> str:
        self.peaks.setdefault(process, {})[rows] = megabytes
        return f"{megabytes:.0f}"

    def table(self) -> str:
        small, large = self.sizes
        lines = [f"| process | {small:,} rows | {large:,} rows | growth |", "|---|---|---|---|"]
        for process, peaks in self.peaks.items():
            growth = f"{peaks[large] / peaks[small]:.2f}x" if small in peaks and large in peaks else "-"
            cells = [f"{peaks[size]:.0f}" if size in peaks else "-" for size in self.sizes]
            lines.append(f"| {process} | {cells[0]} | {cells[1]} | {growth} |")
        return "\n".join(lines)


def tap_alone(csv_path: pathlib.Path, rows: int, ceiling: float, memory: Memory) -> list[Row]:
    """Discovery alone (no cached plan) with a first pass over every value (sample_bytes 0, as
    before issue 24) and with its sample; then the sync alone with the sampled plan (every value
    checked), and again with the plan that sync cached, writing parquet batch files (messages to
    /dev/null, files deleted after)."""
    folder = OUT / "large-tap"
    shutil.rmtree(folder, ignore_errors=True)
    files = folder / "files"
    files.mkdir(parents=True)
    settings = {"data_dir": str(csv_path.parent.resolve()), "cache_dir": str((folder / "cache").resolve()),
                "emit_activate_version_messages": True,
                "batch_config": {"encoding": {"format": "parquet", "compression": "none"},
                                 "storage": {"root": files.as_uri()}, "batch_size": 100_000}}
    result = []
    # (what, process, its settings): discoveries without a cache; the first sync samples again in its
    # own process (as a sync with a sampled catalog checks every value) and caches the plan of every
    # value, which the second takes.
    for mode, process, changes in (
            ("--discover", "discovery, first pass (sample_bytes 0)", {"sample_bytes": 0, "cache_dir": ""}),
            ("--discover", "discovery from a sample", {"cache_dir": ""}),
            ("", "sync writing parquet files, sampled plan: every value checked", {}),
            ("", "sync writing parquet files, the plan that sync cached", {})):
        config = folder / "config.json"
        config.write_text(json.dumps({**settings, **changes}))
        command = ["sh", "-c", f'"{csv_paths.BIN / TAP}" --config "{config}" {mode} > /dev/null; exit $?']
        measured = run_measured(command, labels=[TAP], env=dict(os.environ), cwd=str(folder))
        if measured.returncode != 0:
            sys.stderr.write(measured.output[-5000:])
            raise SystemExit(f"bench: {TAP} {mode} failed on {csv_path}")
        rss = memory.note(f"{TAP}, {process.split(':')[0]}", rows, measured.peak_rss_mb[TAP])
        typed = f"; {_logged(_TYPED, measured.output)} s" if mode else ""
        result.append(Row(f"{TAP} alone: {process}{typed}", rows, measured.seconds, ceiling, rss))
    shutil.rmtree(folder, ignore_errors=True)
    return result


def loader_alone(env: dict[str, str], csv_path: pathlib.Path, rows: int, ceiling: float, memory: Memory) -> list[Row]:
    """The loader fed the tap's parquet batch files: a new table, then the same rows again."""
    config = loader.loader_config(env)
    recorded = loader.tap_output(csv_path, f"batches-{rows}", batches=True)
    loader.drop_table(env)
    result = []
    for label, process in (("first run (new table)", "loader alone, first run"),
                           ("second run, unchanged", "loader alone, second run")):
        messages = loader.batch_input(recorded, rows)
        measured = loader.loader_measured(env, config, messages)
        shutil.rmtree(messages.parent, ignore_errors=True)
        merge = f"; {_merge(measured.output)}" if "second" in label and _merge(measured.output) else ""
        result.append(Row(f"loader alone, parquet BATCH files, {label}{merge}", rows, measured.seconds, ceiling,
                          memory.note(process, rows, measured.peak_rss_mb[loader.TARGET])))
    loader.drop_table(env)
    shutil.rmtree(recorded.parent, ignore_errors=True)
    return result


def meltano_runs(env: dict[str, str], csv_path: pathlib.Path, rows: int, ceiling: float, memory: Memory, *,
                 runs: int) -> list[Row]:
    """First loads into an empty schema (no cached plan), then second runs of the unchanged file:
    `runs` of each, the median shown (a single run here varies by up to 1.5x with the server's
    checkpoints and whatever else the machine runs), the phases of the median run from the log."""
    cache = OUT / "large-meltano-plan-cache"
    result = []
    for label in ("first load", "second run, file unchanged"):
        measured = []
        for _ in range(runs):
            if label == "first load":
                shutil.rmtree(cache, ignore_errors=True)
                csv_paths.reset_schema(env)
            measured.append(csv_paths.meltano_measured(csv_paths.csv_env(env, csv_path, cache), TAP,
                                                       csv_paths.PROJECT_LOADER))
        measured.sort(key=lambda run: run.seconds)
        median = measured[len(measured) // 2]
        parts = [f"{phase} {seconds} s" for phase, seconds in (
            ("sample", _logged(_SAMPLED, median.output)), ("first pass", _logged(_FIRST_PASS, median.output)),
            ("loader", _logged(_COMMITTED, median.output)))
            if seconds != "-"]
        if merge := _merge(median.output):
            parts.append(merge)
        if runs > 1:
            parts.insert(0, f"median of {runs}, {measured[0].seconds:.1f}-{measured[-1].seconds:.1f} s")
        peaks = {process: max(run.peak_rss_mb[process] for run in measured)
                 for process in (TAP, csv_paths.PROJECT_LOADER, "meltano")}
        tap = memory.note(f"meltano run: {TAP} ({label})", rows, peaks[TAP])
        target = memory.note(f"meltano run: target-wiserock-postgres ({label})", rows, peaks[csv_paths.PROJECT_LOADER])
        memory.note(f"meltano run: meltano itself ({label})", rows, peaks["meltano"])
        result.append(Row(f"meltano run {TAP} target-postgres, {label} ({'; '.join(parts)})", rows, median.seconds,
                          ceiling, f"tap {tap} / loader {target}"))
    csv_paths.reset_schema(env)
    shutil.rmtree(cache, ignore_errors=True)
    return result


def late_changes(env: dict[str, str], base: pathlib.Path, rows: int, ceiling: float, memory: Memory) -> list[Row]:
    """A first load of the large file with a column changing type in its last rows, each way."""
    cache = OUT / "large-late-plan-cache"
    late = range(rows - LATE_FROM_END - LATE_ROWS + 1, rows - LATE_FROM_END + 1)
    result = []
    for label, (column, value) in LATE_CHANGES.items():
        path = write_large_csv(OUT / f"csv-{rows}-late-{column}" / "people.csv", rows, base, late=(column, value, late))
        shutil.rmtree(cache, ignore_errors=True)
        csv_paths.reset_schema(env)
        measured = csv_paths.meltano_measured(csv_paths.csv_env(env, path, cache), TAP, csv_paths.PROJECT_LOADER)
        parts = [f"{phase} {seconds} s" for phase, seconds in (
            ("sample", _logged(_SAMPLED, measured.output)), ("first pass", _logged(_FIRST_PASS, measured.output)),
            ("rows loaded converted", _logged(_FOLLOWED, measured.output)),
            ("loader", _logged(_COMMITTED, measured.output))) if seconds != "-"]
        if dropped := _DROPPED.findall(measured.output):
            parts.append(f"{dropped[-1]} rows sent before dropped")
        tap = memory.note(f"meltano run: {TAP} ({column} changes late)", rows, measured.peak_rss_mb[TAP])
        target = memory.note(f"meltano run: target-wiserock-postgres ({column} changes late)", rows,
                             measured.peak_rss_mb[csv_paths.PROJECT_LOADER])
        result.append(Row(f"meltano run {TAP} target-postgres, first load, {label}, rows {late.start:,}-"
                          f"{late.stop - 1:,} ({'; '.join(parts)})", rows, measured.seconds, ceiling,
                          f"tap {tap} / loader {target}"))
        shutil.rmtree(path.parent, ignore_errors=True)
    csv_paths.reset_schema(env)
    shutil.rmtree(cache, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.large", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the large file (default 10,000,000); "
                        "the small one has a tenth")
    parser.add_argument("--runs", type=int, default=3, help="meltano runs of each kind on the large file (median)")
    parser.add_argument("--keep-files", action="store_true", help="keep the large CSV in bench/out")
    args = parser.parse_args()
    embedded_dir = OUT / "embedded"
    embedded_dir.mkdir(parents=True, exist_ok=True)
    server = scratch_server_env(dict(os.environ), embedded_dir)
    env = {**os.environ, **server, "DB_SCHEMA": csv_paths.SCHEMA}
    sizes = (args.rows // 10, args.rows)
    started = time.perf_counter()
    base = write_csv(OUT / f"csv-{BASE_ROWS}" / "people.csv", BASE_ROWS)
    files = [write_large_csv(OUT / f"csv-{rows}" / "people.csv", rows, base) for rows in sizes]
    print(f"bench: files of {', '.join(f'{rows:,}' for rows in sizes)} rows ready in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    memory = Memory(sizes)
    copy = csv_paths.copy_ceiling(env, files[-1], sizes[-1])
    copy.path = "COPY into the typed table with its primary key (the ceiling, median of 3)"
    rows = [copy]
    for csv_path, count in zip(files, sizes, strict=True):
        rows += tap_alone(csv_path, count, copy.rate, memory)
        rows += loader_alone(env, csv_path, count, copy.rate, memory)
        rows += meltano_runs(env, csv_path, count, copy.rate, memory, runs=args.runs if count == sizes[-1] else 1)
    rows += late_changes(env, base, sizes[-1], copy.rate, memory)
    csv_paths.ensure_clean_batches()
    with csv_paths.connect(env) as connection:
        for schema in (csv_paths.SCHEMA, loader.SCHEMA):
            connection.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
    if not args.keep_files:
        for path, count in zip(files, sizes, strict=True):
            if count > BASE_ROWS:  # the smaller files are `make bench`'s
                shutil.rmtree(path.parent, ignore_errors=True)
    stop_embedded(embedded_dir)

    load = os.getloadavg()
    machine = (f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, server {server.get('DB_HOST', 'embedded')}, "
               f"load average {load[0]:.1f} at the end")
    text = (f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {machine}.\n\n"
            f"Shares are of COPY's rows/s for the {sizes[-1]:,}-row file:\n\n"
            f"{markdown_table(rows, share_header='share of COPY')}\n\n"
            f"Peak RSS (MB) of each process:\n\n{memory.table()}\n")
    RESULTS.write_text(text)
    print(text)
    print(f"written to {RESULTS.relative_to(PROJECT_DIR)}")


if __name__ == "__main__":
    main()
