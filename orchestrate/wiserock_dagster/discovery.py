"""The references the API tap's own discovery reports, asked once when the code location loads.

Dagster builds its asset graph and checks when the code location loads, before any run, and the
API's foreign keys are known only to the API (its description, readable with the service-role
key). So the code location runs tap-wiserock-api's discovery itself, in process (the tap is
installed beside Dagster; never the `meltano` CLI), with its settings resolved from meltano.yml
and the environment as project.py resolves them, held in memory only, and reads each stream's
references from the catalog the tap returns. The discovery runs in a thread of its own (the SDK
then installs no signal handlers in the code server) with a deadline and a quick look (one row
per page, two attempts per request). What it found is kept in the code location's reconstruction
metadata, so that run workers and Celery steps build the same graph without asking the API again.
When the discovery fails (the API out of reach, the keys, a reference the tap refuses), the tables
setting's references stand, and one line says so with the tap's reason.
"""

from __future__ import annotations

import json
import threading
import typing as t

from tap_wiserock_api.tap import TapWiseRockApi

# stream -> [(column, parent stream, parent column)], as a catalog's root metadata `references` lists them.
Found = dict[str, list[tuple[str, str, str]]]

DISCOVERY_SETTINGS = ("api_url", "api_key", "email", "password", "tables", "user_agent")
SECRET_SETTINGS = ("api_key", "password")
# Enough to see the description or a table's columns; a source that is down answers within seconds.
QUICK_LOOK = {"page_size": 1, "parallel_requests": 1, "max_attempts": 2, "request_timeout": 15, "retry_wait_ms": 500}
DEADLINE_SECONDS = 60


def references_in(catalog: t.Mapping[str, t.Any]) -> Found:
    """Each stream's references from a catalog's root metadata (the project's taps write them there)."""
    found: Found = {}
    for entry in catalog.get("streams") or []:
        root = next((item.get("metadata") or {} for item in entry.get("metadata") or [] if item.get("breadcrumb") == []),
                    {})
        found[entry.get("tap_stream_id") or entry.get("stream")] = [
            (item["property"], item["parent"], item["parent_property"]) for item in root.get("references") or []
            if isinstance(item, dict) and all(isinstance(item.get(key), str)
                                              for key in ("property", "parent", "parent_property"))]
    return found


def discover_api(config: dict[str, t.Any]) -> Found:
    """The references of tap-wiserock-api's catalog for these settings; RuntimeError says in one line
    why the discovery failed (no secret in it)."""
    outcome: dict[str, t.Any] = {}

    def discover() -> None:
        try:
            outcome["catalog"] = TapWiseRockApi(config={**config, **QUICK_LOOK}, setup_mapper=False).catalog_dict
        except Exception as exc:  # the tap's own one-line errors, and whatever else stops it
            outcome["error"] = exc

    thread = threading.Thread(target=discover, name="wiserock-discovery", daemon=True)
    thread.start()
    thread.join(DEADLINE_SECONDS)
    if thread.is_alive():
        raise RuntimeError(f"no answer within {DEADLINE_SECONDS} s")
    if "error" in outcome:
        raise RuntimeError(_without_secrets(_one_line(outcome["error"]), config))
    return references_in(outcome["catalog"])


def _one_line(error: Exception) -> str:
    """The tap's message (a settings error: each of its reasons), or the error's kind."""
    text = "; ".join(getattr(error, "errors", None) or [str(error)])
    return " ".join(text.split()) or type(error).__name__


def _without_secrets(text: str, config: t.Mapping[str, t.Any]) -> str:
    for name in SECRET_SETTINGS:
        if isinstance(secret := config.get(name), str) and secret:
            text = text.replace(secret, "***")
    return text


class Discoveries:
    """Per extractor, what its discovery found, or None where it could not be asked: asked at most
    once per code location load, or taken from the reconstruction metadata of the load that did."""

    METADATA_KEY = "wiserock/discovered_references"

    def __init__(self, known: str | None = None) -> None:
        self.reconstructed = known is not None
        self.found: dict[str, Found | None] = json.loads(known) if known else {}
        self.problems: list[str] = []

    def api(self, extractor: str, config: dict[str, t.Any]) -> Found | None:
        if extractor not in self.found and not self.reconstructed:
            try:
                self.found[extractor] = discover_api(config)
            except RuntimeError as exc:
                self.found[extractor] = None
                self.problems.append(f"{extractor}: its discovery failed ({exc}); the relations of "
                                     "its tables come from its tables setting only, until the code location is reloaded")
        found = self.found.get(extractor)
        return None if found is None else {stream: [tuple(item) for item in items] for stream, items in found.items()}

    def state(self) -> str:
        return json.dumps(self.found)
