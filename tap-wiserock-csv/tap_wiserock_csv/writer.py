"""A Singer message writer that sends ACTIVATE_VERSION only once a stream is complete, and SCHEMA
messages with the stream's references."""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import ActivateVersionMessage, Message, RecordMessage, SchemaMessage

from tap_wiserock_csv.references import Wire, referencing


class ActivateVersionAtEndWriter(MsgSpecWriter):
    """Holds ACTIVATE_VERSION back until the stream's last record has been written.

    singer-sdk writes ACTIVATE_VERSION when a full-table stream *starts*. target-postgres
    with `hard_delete` then deletes every older row of the table at once, so a run that
    failed part-way would leave the table empty or half loaded. Sent after the last
    record, the same message deletes only the rows the source no longer has, and a run
    that fails deletes nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self._held: list[ActivateVersionMessage] = []
        # An output stream's references (references.py), set by the tap before it syncs.
        self.references_of: t.Callable[[str], list[Wire]] | None = None

    def write_message(self, message: Message) -> None:
        if isinstance(message, ActivateVersionMessage):
            self._held.append(message)
            return
        if isinstance(message, RecordMessage):
            # Records ride in the stdout buffer (flushed when full, and before any other
            # message): a flush per record is a system call per record.
            sys.stdout.buffer.write(self.format_message(message))
            return
        if isinstance(message, SchemaMessage) and self.references_of is not None:
            message = referencing(message, self.references_of(message.stream))
        super().write_message(message)

    def release_activate_version(self) -> None:
        """Write the held messages: call when the current stream's records are all written."""
        held, self._held = self._held, []
        for message in held:
            super().write_message(message)
