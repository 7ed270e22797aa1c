"""tap-wiserock-api: the WiseRock Supabase API as Singer streams."""

from __future__ import annotations

import json
import sys
from functools import cached_property
from typing import TYPE_CHECKING

import requests
import simplejson
from dotenv import find_dotenv, load_dotenv
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_wiserock_api.auth import SupabaseSession
from tap_wiserock_api.batches import BatchConfigError
from tap_wiserock_api.errors import SettingError, SourceDataError, SourceShapeError
from tap_wiserock_api.kinds import SETTING_KINDS
from tap_wiserock_api.openapi import describe_tables
from tap_wiserock_api.references import Wire, sent, with_references
from tap_wiserock_api.streams import TableStream
from tap_wiserock_api.tables import DEFAULT_TABLES, parents_first, parse_tables
from tap_wiserock_api.throttle import InFlightLimit
from tap_wiserock_api.writer import ActivateVersionAtEndWriter

if TYPE_CHECKING:
    import typing as t

    from singer_sdk.streams import Stream

    from tap_wiserock_api.openapi import TableDescription

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

# Failures a user can act on: reported in one line, without a traceback.
EXPECTED_FAILURES = (FatalAPIError, RetriableAPIError, SourceDataError, SourceShapeError, SettingError,
                     BatchConfigError, requests.RequestException, OSError)
# singer-sdk reads config files with simplejson.
CONFIG_SYNTAX_ERRORS = (json.JSONDecodeError, simplejson.JSONDecodeError)


class TapWiseRockApi(Tap):
    """Reads the WiseRock tables through Supabase Auth and PostgREST."""

    name = "tap-wiserock-api"
    message_writer_class = ActivateVersionAtEndWriter

    config_jsonschema = th.PropertiesList(
        th.Property("api_url", th.StringType, required=True, title="API URL",
                    description="Base URL of the Supabase project, e.g. https://abc.supabase.co"),
        th.Property("api_key", th.StringType, required=True, secret=True, title="API key",
                    description="The project's anon (or service) key, sent as the apikey header"),
        th.Property("email", th.StringType, title="Email",
                    description="Email of the Supabase Auth user the tap logs in as; leave email and password empty "
                                "to read as the key's own role (the service-role key: every row)"),
        th.Property("password", th.StringType, secret=True, title="Password",
                    description="Password of that user"),
        th.Property("schema", th.StringType, title="Schema",
                    description="The PostgREST schema the tables live in (sent as Accept-Profile), when not the API's "
                                "default (public); a tables entry's schema wins"),
        th.Property("tables", th.ArrayType(th.ObjectType(
            th.Property("name", th.StringType, required=True, description="The PostgREST table or view"),
            th.Property("schema", th.StringType, description="Its PostgREST schema, when not the tap's schema setting"),
            th.Property("key", th.CustomType({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
                        description="Key column(s); default: the primary key in the API's description, else id"),
            th.Property("column_types", th.ObjectType(additional_properties=th.StringType(allowed_values=list(SETTING_KINDS))),
                        description="Forced column types: " + ", ".join(SETTING_KINDS)),
            th.Property("parents", th.ArrayType(th.StringType), description="Tables loaded before this one"),
            th.Property("references", th.ObjectType(additional_properties=th.StringType),
                        description='Columns holding the key of another listed table, e.g. {"author_id": "user.id"}; '
                                    "each makes that table a parent and is checked for orphans"),
        )), default=DEFAULT_TABLES, title="Tables",
            description="Tables and views to load: name, optional key, column_types, parents and references "
                        '({"author_id": "user.id"}); parents first, from the references, parents and the API\'s '
                        "foreign keys"),
        th.Property("page_size", th.IntegerType(minimum=1), default=1000, title="Page size",
                    description="Rows asked for per request; the server may cap it lower, which is handled"),
        th.Property("request_timeout", th.IntegerType(minimum=1), default=300, title="Request timeout",
                    description="Seconds to wait for one HTTP response before retrying"),
        th.Property("max_attempts", th.IntegerType(minimum=1), default=8, title="Maximum attempts",
                    description="Attempts per request on transient faults (429, 5xx, 52x, dropped connections)"),
        th.Property("retry_wait_ms", th.IntegerType(minimum=0), default=1000, title="First retry wait",
                    description="Milliseconds before the first retry, doubling up to 60 s; a Retry-After header wins"),
        th.Property("user_agent", th.StringType, default="tap-wiserock-api/0.1.0", title="User agent",
                    description="User-Agent header sent with every request"),
        th.Property("parallel_requests", th.IntegerType(minimum=1), default=8, title="Parallel requests",
                    description="Requests in flight at once, for the whole tap (every table's key ranges and the probes "
                                "that cut them); a 429 or 503 lowers it for a while and Retry-After is honoured. A large "
                                "table of any key is read as key ranges this many at a time (rows still come out in key "
                                "order); 4-16 suits a hosted Supabase project; 1 reads one page after another"),
        th.Property("batch_file_max_bytes", th.IntegerType(minimum=1), default=64 * 2**20,
                    title="Batch file maximum bytes",
                    description="With batch_config: a batch file is closed once it holds this many bytes, or "
                                "batch_config's batch_size rows, whichever comes first"),
        # singer-sdk reads this setting but does not list it; declared so that --about shows it.
        th.Property("emit_activate_version_messages", th.BooleanType, default=False,
                    title="Emit ACTIVATE_VERSION messages",
                    description="Lets the loader delete rows that are gone from the source "
                                "(sent after a stream's last record)"),
    ).to_dict()

    @cached_property
    def session(self) -> SupabaseSession:
        """One login for the whole run, shared by every stream (none without email and password)."""
        email, password = self.config.get("email") or None, self.config.get("password") or None
        if (email is None) != (password is None):
            raise SettingError("email and password go together: set both (a user login), or neither (the key's own role)")
        return SupabaseSession(
            api_url=self.config["api_url"], api_key=self.config["api_key"], email=email, password=password,
            timeout=self.config["request_timeout"], user_agent=self.config["user_agent"], logger=self.logger)

    @cached_property
    def in_flight(self) -> InFlightLimit:
        """The run's one in-flight limit: every stream's requests share it (throttle.py)."""
        return InFlightLimit(self.config["parallel_requests"])

    @cached_property
    def table_streams(self) -> list[TableStream]:
        """Every table of the tables setting, its shape read from the API, parents first."""
        streams = {setting.name: TableStream(self, setting) for setting in parse_tables(self.config["tables"])}
        if not streams:
            raise SettingError("tables is empty: list the tables to load, e.g. [{\"name\": \"user\"}]")
        descriptions = self._descriptions(streams.values())
        for stream in streams.values():
            stream.discover(descriptions[stream.profile], loaded=streams.keys())
        check_parent_columns(streams)
        order, cycle = parents_first(list(streams), {name: stream.parents for name, stream in streams.items()})
        if cycle:
            self.logger.warning("Tables %s reference each other; they are loaded in the listed order.", ", ".join(cycle))
        return [streams[name] for name in order]

    def _descriptions(self, streams: t.Iterable[TableStream]) -> dict[str | None, dict[str, TableDescription] | None]:
        """The API's description of each schema the tables live in (PostgREST describes one schema per
        request), or None for a schema whose description this key may not read."""
        descriptions: dict[str | None, dict[str, TableDescription] | None] = {}
        for stream in streams:
            if stream.profile in descriptions:
                continue
            document = stream.read_description()
            descriptions[stream.profile] = describe_tables(document) if document is not None else None
            if document is not None and descriptions[stream.profile] is None:
                self.logger.warning("The API's root did not answer with an OpenAPI description: columns and types "
                                    "come from the rows.")
        return descriptions

    @override
    def discover_streams(self) -> list[Stream]:
        return list(self.table_streams)

    @property
    @override
    def catalog_dict(self) -> dict:
        """The catalog, each stream's references in its root metadata (references.py)."""
        return with_references(super().catalog_dict, {stream.name: stream.references for stream in self.table_streams})

    def references_of(self, output_stream: str) -> list[Wire]:
        """The references a SCHEMA message of this output stream (a stream map's alias) carries."""
        for stream in self.table_streams:
            for stream_map in self.mapper.stream_maps.get(stream.name, []):
                if stream_map.stream_alias == output_stream:
                    return sent(stream.references, stream_map, self.mapper)
        return []

    @override
    def setup_mapper(self) -> None:
        """As the SDK's, but a stream deselected in the catalog is registered without its key: the SDK
        registers it with none of its columns, and a stream map (the project's alias) then refuses
        the key ("Invalid key properties"). A deselected stream is never written."""
        for entry in self.catalog.streams:
            if not entry.metadata.resolve_selection().get((), True):
                entry.key_properties = []
        super().setup_mapper()

    @override
    def load_streams(self) -> list[Stream]:
        """Parents first (the SDK's default sorts by name)."""
        return list(self.table_streams)

    @override
    def sync_all(self) -> None:
        """Every stream's columns are known and announced before the first message; the final STATE
        remembers each table's rows and columns (for the RLS warning and empty tables). SCHEMA
        messages carry each stream's references."""
        self.message_writer.references_of = self.references_of
        for stream in self.streams.values():  # (the SDK's streams: the catalog applied)
            if not isinstance(stream, TableStream):
                continue
            if not stream.remember_columns():
                stream.selected = False
                self.logger.warning(
                    "Table '%s' returned no rows and its columns cannot be known with this key (the API's description "
                    "is not readable): nothing is loaded for it this run; its staging table, if any, keeps its rows.",
                    stream.name)
            elif stream.selected:
                stream.announce()
        super().sync_all()
        self.state_writer.write_state(self.state)


def check_parent_columns(streams: dict[str, TableStream]) -> None:
    """A declared reference names a column its parent has (when the parent's columns are known)."""
    for stream in streams.values():
        for reference in stream.setting.references:
            parent = streams[reference.parent].kinds
            if parent and reference.parent_column not in parent:
                raise SettingError(f"tables entry '{stream.name}': references {reference}, but table "
                                   f"'{reference.parent}' has no column {reference.parent_column!r} (its columns: "
                                   f"{', '.join(parent)})")


def main() -> None:
    """Console entry point: expected failures end in one line on stderr and exit 1."""
    # For `--config ENV`: singer-sdk looks for .env beside its own package, not in the
    # working directory. Variables already in the environment win over the file.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    try:
        TapWiseRockApi.cli()
    except CONFIG_SYNTAX_ERRORS as exc:
        print(f"tap-wiserock-api: error: a --config file is not valid JSON: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except EXPECTED_FAILURES as exc:
        print(f"tap-wiserock-api: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
