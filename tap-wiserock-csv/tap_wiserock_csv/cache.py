"""Plans kept between runs, so that discovery does not read every file on every `meltano run`.

A plan is reused only for the same file content and the same typing settings: the key is
the file's size, modification and change times (ns) and inode, plus every option that
affects typing. A file that changed (any write updates its change time) is read again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import typing as t

from tap_wiserock_csv.plan import FilePlan

if t.TYPE_CHECKING:
    import logging
    import pathlib

    from tap_wiserock_csv.plan import FileOptions

RULES_VERSION = 3  # raise when typing or naming rules change: older plans are then ignored


def _digest(value: t.Any, size: int) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:size]


def fingerprint(options: FileOptions) -> str:
    """What identifies the file's content and the settings that type it."""
    stat = options.path.stat()
    return _digest([RULES_VERSION, str(options.path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns,
                    stat.st_ino, options.identity()], 32)


def plan_stamp(file_fingerprint: str, columns: list[str], kinds: list[str], keys: list[str]) -> str:
    """Ties a catalog's stream to the file state and types it was discovered from."""
    return _digest([file_fingerprint, columns, kinds, keys], 16)


class PlanCache:
    """One JSON file per data file in `folder`; None disables the cache."""

    def __init__(self, folder: pathlib.Path | None, logger: logging.Logger) -> None:
        self.folder = folder
        self.logger = logger

    def _file(self, options: FileOptions) -> pathlib.Path | None:
        if self.folder is None:
            return None
        # One entry per file and settings: plans for other settings (a catalog's keys) do not evict it.
        return self.folder / f"{_digest([str(options.path.resolve()), options.identity()], 32)}.json"

    def get(self, options: FileOptions, file_fingerprint: str) -> FilePlan | None:
        path = self._file(options)
        try:
            stored = json.loads(path.read_text(encoding="utf-8")) if path else None
        except (OSError, ValueError):
            return None
        if not isinstance(stored, dict) or stored.get("fingerprint") != file_fingerprint:
            return None
        try:
            return FilePlan.from_dict(stored["plan"])
        except (KeyError, TypeError):
            return None

    def put(self, options: FileOptions, file_fingerprint: str, plan: FilePlan) -> None:
        path = self._file(options)
        if path is None:
            return
        temporary = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"fingerprint": file_fingerprint, "label": options.label, "plan": plan.to_dict()}, out)
            os.replace(temporary, path)  # readers see the old plan or the new one, never half a file
        except OSError as exc:
            # A cache that cannot be written costs a pass next run, nothing else.
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
            self.logger.warning("Could not write the plan cache %s: %s", path, exc)
