"""A Singer message writer that sends ACTIVATE_VERSION only once a stream is complete, and SCHEMA
messages with the stream's references."""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import ActivateVersionMessage, Message, RecordMessage, SchemaMessage, SingerMessageType

from tap_wiserock_csv.references import Wire, referencing


class ActivateVersionAtEndWriter(MsgSpecWriter):
    """Holds ACTIVATE_VERSION back until the stream's last record has been written.

    singer-sdk writes ACTIVATE_VERSION when a full-table stream *starts*. target-postgres
    with `hard_delete` then deletes every older row of the table at once, so a run that
    failed part-way would leave the table empty or half loaded. Sent after the last
    record, the same message deletes only the rows the source no longer has, and a run
    that fails deletes nothing.

    The stream's version (that message's) is also written on its BATCH messages (the SDK's
    field, which it leaves empty), as on its RECORD messages, so that a stream sent again from
    its first row (`start_over`) is told apart by any target: the rows of the earlier version
    are dropped (or, by a standard target, deleted at the ACTIVATE_VERSION of the later one).
    """

    def __init__(self) -> None:
        super().__init__()
        self._held: list[ActivateVersionMessage] = []
        # An output stream's references (references.py), set by the tap before it syncs.
        self.references_of: t.Callable[[str], list[Wire]] | None = None
        self._versions: dict[str, int] = {}  # by stream: the version of the rows being sent
        self._started_over: dict[str, int] = {}  # streams sent again: the version their RECORD messages get

    def write_message(self, message: Message) -> None:
        if isinstance(message, ActivateVersionMessage):
            self._versions[message.stream] = message.version
            self._held.append(message)
            return
        if isinstance(message, RecordMessage):
            if self._started_over:
                message.version = self._started_over.get(message.stream, message.version)
            # Records ride in the stdout buffer (flushed when full, and before any other
            # message): a flush per record is a system call per record.
            sys.stdout.buffer.write(self.format_message(message))
            return
        if isinstance(message, SchemaMessage) and self.references_of is not None:
            message = referencing(message, self.references_of(message.stream))
        if message.type == SingerMessageType.BATCH and getattr(message, "version", None) is None:
            message.version = self._versions.get(message.stream)  # type: ignore[attr-defined]
        super().write_message(message)

    def start_over(self, streams: list[str]) -> bool:
        """The streams are sent again from their first row: the messages that follow (and the
        held ACTIVATE_VERSION) carry each one's next version. False, changing nothing, when a
        stream has no version (no ACTIVATE_VERSION): no target could tell the two sendings apart."""
        if not streams or any(stream not in self._versions for stream in streams):
            return False
        for stream in streams:
            self._versions[stream] = self._started_over[stream] = self._versions[stream] + 1
        for message in self._held:
            message.version = self._versions.get(message.stream, message.version)
        return True

    def release_activate_version(self) -> None:
        """Write the held messages: call when the current stream's records are all written."""
        held, self._held = self._held, []
        for message in held:
            super().write_message(message)
