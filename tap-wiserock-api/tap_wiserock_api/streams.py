"""The WiseRock tables. Parents come before children: `user`, then `note`."""

from __future__ import annotations

from singer_sdk import typing as th

from tap_wiserock_api.client import PostgrestStream

# Columns every WiseRock table shares.
ID = th.Property("id", th.IntegerType, required=True, description="Primary key")
ACTIVEFLAG = th.Property("activeflag", th.BooleanType, description="Whether the row is active")
CREATED_AT = th.Property("created_at", th.DateTimeType, description="Creation time, in UTC")
UPDATED_AT = th.Property("updated_at", th.DateTimeType, description="Last update time, in UTC")


class UserStream(PostgrestStream):
    name = "user"
    schema = th.PropertiesList(
        ID,
        th.Property("email", th.StringType),
        th.Property("first_name", th.StringType),
        th.Property("last_name", th.StringType),
        ACTIVEFLAG,
        CREATED_AT,
        UPDATED_AT,
    ).to_dict()


class NoteStream(PostgrestStream):
    name = "note"
    schema = th.PropertiesList(
        ID,
        th.Property("user_id", th.IntegerType, description="The note's author: user.id"),
        th.Property("title", th.StringType),
        th.Property("body", th.StringType, description="Text; can be hundreds of KB"),
        ACTIVEFLAG,
        CREATED_AT,
        UPDATED_AT,
    ).to_dict()


# Sync order: a child's parent must come first.
STREAM_TYPES: tuple[type[PostgrestStream], ...] = (UserStream, NoteStream)
