"""Which batch files the loader reads and deletes: the `batch_roots` setting.

A BATCH message names files by URL, and whoever writes the loader's input chooses them: a
replayed stream, a third-party tap with another storage root, a typo, or a hostile line. So
with `batch_roots` set, only files whose real path (`..` and symbolic links resolved) lies
inside one of those folders are read, and deleted once loaded or when the run fails; any
other file fails the run before anything is read or deleted. Without the setting (a
standalone run), local files are read wherever they are and never deleted: the loader cannot
tell its own files from anyone else's.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import typing as t
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from target_wiserock_postgres.errors import LoadError, shorten

SETTING = "batch_roots"
PATH_LIMIT = 300  # characters of a path or URL shown in a message


def _local_path(url: str) -> pathlib.Path | None:
    """The path of a local file:// URL, else None."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    path = url2pathname(unquote(parts.path))
    return pathlib.Path(path) if path and "\x00" not in path else None


def _local_folder(item: str) -> pathlib.Path | None:
    """A batch_roots entry: a path, or a file:// URL."""
    if "://" in item:
        return _local_path(item)
    return pathlib.Path(item) if item and "\x00" not in item else None


def file_path(stream: str, url: t.Any) -> pathlib.Path:
    """The local file a BATCH manifest entry names: only file:// URLs."""
    path = _local_path(url) if isinstance(url, str) else None
    if path is None:
        raise LoadError(f"stream {stream!r}: batch file {shorten(url, PATH_LIMIT)} is not a local file:// URL, "
                        f"the only kind this loader reads (setting {SETTING}); it was neither read nor deleted")
    return path


@dataclasses.dataclass(frozen=True)
class BatchFile:
    path: pathlib.Path  # the real path: what is read, and deleted when `owned`
    owned: bool  # inside a batch root: deleted once loaded, and when the run fails


@dataclasses.dataclass(frozen=True)
class BatchRoots:
    """The real paths of the configured folders; None when the setting is absent."""

    folders: tuple[pathlib.Path, ...] | None

    @classmethod
    def from_setting(cls, value: t.Any) -> BatchRoots:
        """Folders as paths or file:// URLs; relative ones from the working directory."""
        if value is None:
            return cls(None)
        folders = []
        for item in value:  # strings: the settings' schema says so
            folder = _local_folder(item)
            if folder is None:
                raise LoadError(f"invalid settings: {SETTING} entry {item!r} is not a local folder "
                                "(a path or a file:// URL)")
            folders.append(pathlib.Path(os.path.realpath(folder)))
        return cls(tuple(folders))

    def file(self, stream: str, url: t.Any) -> BatchFile:
        """The file a manifest entry names, or a LoadError when it is not the loader's to read."""
        path = file_path(stream, url)
        real = pathlib.Path(os.path.realpath(path))
        if self.folders is None:
            return BatchFile(real, owned=False)
        if any(folder in real.parents for folder in self.folders):
            return BatchFile(real, owned=True)
        resolved = "" if real == path else f" (really {shorten(real, PATH_LIMIT)})"
        folders = ", ".join(map(str, self.folders)) or "none"
        raise LoadError(f"stream {stream!r}: batch file {shorten(path, PATH_LIMIT)}{resolved} is outside the folders "
                        f"of the setting {SETTING} ({folders}); it was neither read nor deleted (add its folder to "
                        f"{SETTING} if the loader should read and delete such files)")
