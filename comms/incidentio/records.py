"""What incident.io says, as comms' own records: incidents, severities, statuses and custom
fields parsed from API v2 (and webhook) JSON, and the ports that read them.

The adapter (``comms.adapters.incidentio``) implements :class:`IncidentioAPI` and returns
these records, never JSON; a body that is not in the documented shape is a
:class:`MalformedError` naming the first field that is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from comms.errors import UsageError
from comms.times import utc


@dataclass(frozen=True, slots=True)
class IoSeverity:
    """An incident.io severity; a higher ``rank`` is more severe."""

    id: str
    name: str
    rank: int = 0


@dataclass(frozen=True, slots=True)
class IoStatus:
    """An incident.io status; ``category`` is triage, live, learning, closed, paused, …"""

    id: str
    name: str
    category: str


@dataclass(frozen=True, slots=True)
class IoValue:
    """One value of a custom field: an option's or catalog entry's name, or text."""

    label: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IoFieldEntry:
    """A custom field as set on one incident."""

    field_id: str
    field_name: str
    values: tuple[IoValue, ...] = ()


@dataclass(frozen=True, slots=True)
class IoCustomField:
    """A custom field of the organisation."""

    id: str
    name: str
    field_type: str


@dataclass(frozen=True, slots=True)
class IoIncident:
    """The parts of an incident.io incident comms uses (field names as in API v2)."""

    id: str
    reference: str
    name: str
    status: IoStatus
    severity: IoSeverity | None
    created_at: datetime
    updated_at: datetime
    mode: str = "standard"
    visibility: str = "public"
    permalink: str = ""
    slack_channel_id: str = ""
    custom_fields: tuple[IoFieldEntry, ...] = ()

    def entry(self, name: str) -> IoFieldEntry | None:
        """The custom field entry named ``name`` (case-insensitive), if set."""
        wanted = name.casefold()
        return next((e for e in self.custom_fields if e.field_name.casefold() == wanted), None)


class MalformedError(UsageError, ValueError):
    """Data from incident.io that is not in the documented shape."""


def as_object(data: Any, where: str) -> dict[str, Any]:
    """``data`` when it is a JSON object; ``MalformedError`` naming ``where`` otherwise."""
    if not isinstance(data, dict):
        raise MalformedError(f"{where} is not a JSON object")
    return data


def as_text(data: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    """The string at ``data[key]`` (``default`` when absent or null, if one is given);
    ``MalformedError`` naming ``where.key`` otherwise."""
    value = data.get(key, default)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise MalformedError(f"{where}.{key} is missing or not a string")
    return value


def _time(data: dict[str, Any], key: str, where: str) -> datetime:
    text = as_text(data, key, where)
    try:
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise MalformedError(f"{where}.{key} is not an ISO 8601 time with a zone") from None


def parse_severity(data: Any, where: str = "severity") -> IoSeverity:
    """A severity object (``id``, ``name``, ``rank``) as :class:`IoSeverity`."""
    obj = as_object(data, where)
    rank = obj.get("rank", 0)
    return IoSeverity(
        as_text(obj, "id", where), as_text(obj, "name", where), rank if isinstance(rank, int) else 0
    )


def parse_status(data: Any, where: str = "incident_status") -> IoStatus:
    """An incident status object (``id``, ``name``, ``category``) as :class:`IoStatus`."""
    obj = as_object(data, where)
    return IoStatus(
        as_text(obj, "id", where), as_text(obj, "name", where), as_text(obj, "category", where)
    )


def parse_custom_field(data: Any, where: str = "custom_field") -> IoCustomField:
    """A custom field object as :class:`IoCustomField`."""
    obj = as_object(data, where)
    return IoCustomField(
        as_text(obj, "id", where),
        as_text(obj, "name", where),
        as_text(obj, "field_type", where, ""),
    )


def _values(items: Any, where: str) -> tuple[IoValue, ...]:
    if not isinstance(items, list):
        raise MalformedError(f"{where} is not a list")
    found: list[IoValue] = []
    for n, raw in enumerate(items):
        item = as_object(raw, f"{where}[{n}]")
        option, entry = item.get("value_option"), item.get("value_catalog_entry")
        if isinstance(option, dict) and isinstance(option.get("value"), str):
            found.append(IoValue(option["value"]))
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            aliases = [a for a in entry.get("aliases") or [] if isinstance(a, str)]
            if isinstance(entry.get("external_id"), str):
                aliases.append(entry["external_id"])
            found.append(IoValue(entry["name"], tuple(aliases)))
        else:  # text fields hold a list typed by hand: "acme, initech"
            for key in ("value_text", "value_link", "value_numeric"):
                if isinstance(item.get(key), str):
                    found += [
                        IoValue(p.strip()) for p in re.split(r"[,;\n]", item[key]) if p.strip()
                    ]
    return tuple(found)


def parse_incident(data: Any, where: str = "incident") -> IoIncident:
    """An incident object of API v2 (or a webhook's) as :class:`IoIncident`;
    ``MalformedError`` names the first field that is not as documented."""
    obj = as_object(data, where)
    entries = obj.get("custom_field_entries") or []
    if not isinstance(entries, list):
        raise MalformedError(f"{where}.custom_field_entries is not a list")
    fields = []
    for n, raw in enumerate(entries):
        entry = as_object(raw, f"{where}.custom_field_entries[{n}]")
        info = as_object(
            entry.get("custom_field"), f"{where}.custom_field_entries[{n}].custom_field"
        )
        fields.append(
            IoFieldEntry(
                as_text(info, "id", "custom_field"),
                as_text(info, "name", "custom_field"),
                _values(entry.get("values") or [], f"{where}.custom_field_entries[{n}].values"),
            )
        )
    severity = obj.get("severity")
    return IoIncident(
        id=as_text(obj, "id", where),
        reference=as_text(obj, "reference", where),
        name=as_text(obj, "name", where),
        status=parse_status(obj.get("incident_status"), f"{where}.incident_status"),
        severity=None if severity is None else parse_severity(severity, f"{where}.severity"),
        created_at=_time(obj, "created_at", where),
        updated_at=_time(obj, "updated_at", where),
        mode=as_text(obj, "mode", where, "standard"),
        visibility=as_text(obj, "visibility", where, "public"),
        permalink=as_text(obj, "permalink", where, ""),
        slack_channel_id=as_text(obj, "slack_channel_id", where, ""),
        custom_fields=tuple(fields),
    )


# -- ports ------------------------------------------------------------------------------------


class IncidentSource(Protocol):
    """incident.io's incidents, read one at a time (``comms.adapters.incidentio``)."""

    def incident(self, key: str) -> IoIncident:
        """The incident whose id, or the numeric part of whose reference, is ``key``;
        ``NotFoundError`` when there is none, ``ConfigError`` for a refused key."""


class IncidentCatalog(Protocol):
    """What an incident.io organisation has configured."""

    def severities(self) -> list[IoSeverity]:
        """Every severity, least severe first."""

    def statuses(self) -> list[IoStatus]:
        """Every incident status."""

    def custom_fields(self) -> list[IoCustomField]:
        """Every custom field."""


class IncidentioAPI(IncidentSource, IncidentCatalog, Protocol):
    """Both, as the adapter's client offers them; closed when done."""

    def close(self) -> None:
        """Release the client's connections."""
