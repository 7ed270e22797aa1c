"""target-wiserock-postgres: each run's snapshot of every stream, loaded with COPY, committed at once."""

from __future__ import annotations

import json
import signal
import sys
import typing as t

import msgspec
import psycopg
import simplejson
from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_wiserock_postgres.batch_roots import BatchRoots
from target_wiserock_postgres.connector import ConnectionSettings
from target_wiserock_postgres.errors import LoadError, TerminatedError, shorten
from target_wiserock_postgres.reader import MessageReader
from target_wiserock_postgres.relations import MESSAGE_FIELD
from target_wiserock_postgres.run import LoadRun

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from pathlib import PurePath
    from types import FrameType

    from singer_sdk.helpers.capabilities import CapabilitiesEnum
    from singer_sdk.singerlib.encoding.base import GenericSingerReader

    from target_wiserock_postgres.sinks import StreamLoad

PROGRAM = "target-wiserock-postgres"
SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
# Failures a user can act on: reported in one line, without a traceback.
EXPECTED_FAILURES = (LoadError, InvalidInputLine)
# singer-sdk reads config files with simplejson.
CONFIG_SYNTAX_ERRORS = (json.JSONDecodeError, simplejson.JSONDecodeError)


class TargetWiseRockPostgres(Target):
    """Loads each run's snapshot of every stream into PostgreSQL with COPY, all tables at one commit or none."""

    name = PROGRAM
    message_reader_class = MessageReader
    # Only what this target honours: no stream maps, flattening, record metadata, load
    # methods, batch sizes or record validation. BATCH messages need no capability flag to be
    # read (the SDK dispatches them to every target); declared so that --about tells.
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.ACTIVATE_VERSION,
        PluginCapabilities.BATCH,
    ]

    config_jsonschema = th.PropertiesList(
        th.Property("host", th.StringType, title="Host",
                    description="Server name, IP address, or a unix-socket directory such as /var/run/postgresql"),
        th.Property("port", th.IntegerType, default=5432, title="Port", description="Server port"),
        th.Property("user", th.StringType, title="User", description="Login role"),
        th.Property("password", th.StringType, secret=True, title="Password",
                    description="Password of the login role; leave empty where the server needs none (trust, peer, .pgpass)"),
        th.Property("database", th.StringType, title="Database", description="Database holding the staging tables"),
        th.Property("default_target_schema", th.StringType, required=True, title="Schema",
                    description="Schema of the staging tables (one per stream, named after the stream); created when missing"),
        th.Property("sslmode", th.StringType(allowed_values=SSL_MODES), default="prefer", title="TLS mode",
                    description="libpq sslmode: " + ", ".join(SSL_MODES)),
        th.Property("complete_streams_at_end_of_input", th.BooleanType, default=False,
                    title="Complete streams at end of input",
                    description="For taps that never send ACTIVATE_VERSION after a stream's last record: treat a clean "
                                "end of input as every stream complete. Risk: a tap that dies between two records without "
                                "an error then replaces a table with part of its rows"),
        th.Property("batch_roots", th.ArrayType(th.StringType), title="Batch roots",
                    description="Folders (paths or file:// URLs) whose batch files the loader reads and deletes once "
                                "loaded; a BATCH message naming a file elsewhere fails the run, and nothing is read or "
                                "deleted. Unset: batch files are read wherever they are and never deleted"),
    ).to_dict()

    def __init__(self, *, config: dict | PurePath | str | list[PurePath | str] | None = None,
                 parse_env_config: bool = False, validate_config: bool = True,
                 message_reader: GenericSingerReader | None = None) -> None:
        # No stream maps: the SDK's mapper would only be set up and never used.
        super().__init__(config=config, parse_env_config=parse_env_config, validate_config=validate_config,
                         message_reader=message_reader, setup_mapper=False)
        self._run = LoadRun(ConnectionSettings.from_config(self.config), self.config["default_target_schema"],
                            BatchRoots.from_setting(self.config.get("batch_roots")),
                            complete_at_end=bool(self.config.get("complete_streams_at_end_of_input")))
        self._loads = self._run.loads
        self._latest_state: dict | None = None
        self._recent: StreamLoad | None = None  # the stream of the last RECORD: the fast path's guess
        if isinstance(self.message_reader, MessageReader):
            self.message_reader.fast_record = self._fast_record

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Invalid settings as one line. The SDK's CLI logs a ConfigValidationError as several
        log lines and offers no public hook to report it otherwise."""
        try:
            return super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            raise LoadError(f"invalid settings: {'; '.join(exc.errors) or exc}") from None

    @classmethod
    @override
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        """None of the SDK's built-in target settings: each would be a setting this target ignores."""

    @override
    def listen(self, file_input: t.IO[str] | None = None) -> None:
        """Whatever ends the run early (bad input, a failed load, a signal), the transaction is
        rolled back and the loader's batch files deleted before the error is reported."""
        try:
            super().listen(file_input)
        except BaseException:
            self._run.abort()
            raise

    def _fail(self, exc: BaseException) -> t.NoReturn:
        """A database error as one line (`listen` rolls back)."""
        if isinstance(exc, psycopg.Error):
            raise self._run.explain(exc) from None
        raise exc

    # Message dispatch (the SDK's reader calls these for each line)

    def _fast_record(self, line: bytes | str) -> bool:
        """A RECORD of the same stream as the last one, decoded straight into its row (the hot
        path); False leaves the line to the SDK's dispatch (other messages, a stream switch)."""
        load = self._recent
        if load is None or load.record_decoder is None:
            return False
        try:
            message = load.record_decoder.decode(line)
        except msgspec.DecodeError:
            return False
        if message.type != "RECORD" or message.stream != load.stream or message.version != load.version:
            return False
        try:
            load.write_decoded(message.record)
        except BaseException as exc:
            self._fail(exc)
        return True

    @override
    def _process_record_message(self, message_dict: dict) -> None:
        try:
            self._recent = load = self._loads[message_dict["stream"]]
            self._run.take_version(load, message_dict.get("version"))
            load.write(message_dict["record"])
        except (KeyError, TypeError, AttributeError):
            self._fail(self._bad_record(message_dict))
        except BaseException as exc:
            self._fail(exc)

    def _bad_record(self, message: dict) -> LoadError:
        stream = message.get("stream")
        try:
            self._run.load_of(stream, "RECORD")
        except LoadError as exc:
            return exc
        return LoadError(f"stream {shorten(stream)!r}: a RECORD message without a record object: {shorten(message)}")

    @override
    def _process_schema_message(self, message_dict: dict) -> None:
        self._guarded(self._run.start_stream, message_dict.get("stream"), message_dict.get("schema"),
                      message_dict.get("key_properties"), message_dict.get(MESSAGE_FIELD))

    @override
    def _process_activate_version_message(self, message_dict: dict) -> None:
        self._guarded(self._run.activate, message_dict.get("stream"), message_dict.get("version"))

    @override
    def _process_batch_message(self, message_dict: dict) -> None:
        self._guarded(self._run.load_batch, message_dict.get("stream"), message_dict.get("encoding"),
                      message_dict.get("manifest"), message_dict.get("version"))

    @override
    def _process_state_message(self, message_dict: dict) -> None:
        """Held until the commit: a state is passed on only once its rows are in the tables."""
        self._latest_state = message_dict.get("value")

    @override
    def process_endofpipe(self) -> None:
        self._guarded(self._run.finish, getattr(self.message_reader, "nul_removed", {}))
        if self._latest_state is not None:
            self._write_state_message(self._latest_state)

    def _guarded(self, action: t.Callable[..., t.Any], *args: t.Any) -> None:
        try:
            action(*args)
        except BaseException as exc:
            self._fail(exc)

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM or SIGINT: roll back, never drain or commit what has arrived so far."""
        if self._run.committing:
            self.logger.warning("Received signal %d during COMMIT; finishing it.", signum)
            return
        # Closed here too: the signal may land between two messages, outside any handler.
        self._run.abort()
        raise TerminatedError(f"stopped by signal {signal.Signals(signum).name}: the transaction was rolled back, "
                              "nothing was changed")


def main() -> None:
    """Console entry point: expected failures end in one line on stderr and exit 1."""
    try:
        TargetWiseRockPostgres.cli()
    except CONFIG_SYNTAX_ERRORS as exc:
        print(f"{PROGRAM}: error: a --config file is not valid JSON: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except EXPECTED_FAILURES as exc:
        # One line even when a name in the message holds a line break.
        message = str(exc).replace("\r", "\\r").replace("\n", "\\n")
        print(f"{PROGRAM}: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
