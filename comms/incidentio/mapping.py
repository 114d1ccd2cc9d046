"""How incident.io's values become comms': severities, statuses and the tenant field (the
``[incidentio]`` table of comms.toml over defaults), and what a typed incident reference
asks the API for.

Pure: :func:`rules_from_table` reads a table already loaded, :func:`unmapped` reads the
organisation's configuration through the :class:`IncidentCatalog` port.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from comms.errors import ConfigError, UsageError
from comms.incidentio.records import IncidentCatalog, IoIncident, IoStatus
from comms.models import Severity, Status

TENANT_FIELD = "Affected tenants"
# incident.io's default severities, plus names that already say which comms severity.
DEFAULT_SEVERITIES: dict[str, Severity] = {
    "critical": Severity.S1,
    "major": Severity.S2,
    "minor": Severity.S3,
    **{f"{p}{s.value[1]}": s for s in Severity for p in ("s", "sev", "p")},
}
# Status names inside incident.io's "live" category (configurable per team) that say more
# than the category does.  Keys are lower case.
DEFAULT_STATUSES: dict[str, Status | None] = {
    "investigating": Status.INVESTIGATING,
    "identified": Status.IDENTIFIED,
    "fixing": Status.MITIGATING,
    "mitigating": Status.MITIGATING,
    "monitoring": Status.MONITORING,
}
# Status categories (fixed by incident.io) → comms status; None keeps the current one.
CATEGORY_STATUS: dict[str, Status | None] = {
    "triage": Status.INVESTIGATING,
    "live": Status.INVESTIGATING,
    "paused": None,
    "learning": Status.RESOLVED,  # "Post-incident": customer impact is over
    "closed": Status.RESOLVED,
    "declined": Status.RESOLVED,
    "canceled": Status.RESOLVED,
    "merged": Status.RESOLVED,
}


@dataclass(frozen=True)
class Rules:
    """How incident.io's values become comms': the ``[incidentio]`` table, over defaults.

    ``severities`` and ``statuses`` are keyed by incident.io's names in lower case.
    """

    severities: dict[str, Severity] = field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    statuses: dict[str, Status | None] = field(default_factory=lambda: dict(DEFAULT_STATUSES))
    tenant_field: str = TENANT_FIELD

    def severity_for(self, io: IoIncident) -> Severity:
        """The comms severity of ``io``; ``UsageError`` with the line to add when unmapped."""
        if io.severity is None:
            raise UsageError(
                f"{io.reference} has no severity in incident.io yet; set one there, then "
                "import or sync it again"
            )
        found = self.severities.get(io.severity.name.strip().casefold())
        if found is None:
            raise UsageError(
                f"{io.reference}: incident.io severity '{io.severity.name}' has no comms "
                f"severity; add a line under [incidentio.severities] in comms.toml, e.g. "
                f'"{io.severity.name}" = "S2" (S1 most severe … S4)'
            )
        return found

    def status_for(self, status: IoStatus) -> Status | None:
        """The comms status of an incident.io status: by its name, else by its category;
        None when neither says (a paused incident, a live status of the team's own)."""
        named = status.name.strip().casefold()
        if named in self.statuses:
            return self.statuses[named]
        if status.category == "live":
            return None  # a live status of the team's own: not guessed
        return CATEGORY_STATUS.get(status.category)


def rules_from_table(table: Mapping[str, Any]) -> Rules:
    """:class:`Rules` from the ``[incidentio]`` table (``severities``, ``statuses``,
    ``tenant_field``; other keys are the adapter's); ``ConfigError`` names a bad entry."""
    severities = dict(DEFAULT_SEVERITIES)
    raw = table.get("severities", {})
    if not isinstance(raw, dict):
        raise ConfigError('incidentio.severities must be a table like { "Critical" = "S1" }')
    for name, value in raw.items():
        if value not in {s.value for s in Severity}:
            raise ConfigError(f'incidentio.severities."{name}" must be one of S1, S2, S3, S4')
        severities[name.strip().casefold()] = Severity(value)
    statuses = dict(DEFAULT_STATUSES)
    raw = table.get("statuses", {})
    if not isinstance(raw, dict):
        raise ConfigError('incidentio.statuses must be a table like { "Fixing" = "mitigating" }')
    known = [s.value for s in Status]
    for name, value in raw.items():
        if value not in (*known, "keep"):
            raise ConfigError(
                f'incidentio.statuses."{name}" must be one of {", ".join(known)} or keep'
            )
        statuses[name.strip().casefold()] = None if value == "keep" else Status(value)
    tenant_field = table.get("tenant_field", TENANT_FIELD)
    if not isinstance(tenant_field, str) or not tenant_field.strip():
        raise ConfigError(
            "incidentio.tenant_field must name a custom field, e.g. 'Affected tenants'"
        )
    return Rules(severities, statuses, tenant_field.strip())


def unmapped(catalog: IncidentCatalog, rules: Rules) -> list[str]:
    """What of the organisation's configuration these rules cannot map, one line each:
    severities, live statuses without a name mapping, a missing tenant field."""
    found = [
        f'severity "{s.name}": add it under [incidentio.severities]'
        for s in catalog.severities()
        if s.name.strip().casefold() not in rules.severities
    ]
    found += [
        f'status "{s.name}" (live) is kept as it is in comms; map it under [incidentio.statuses]'
        for s in catalog.statuses()
        if s.category == "live" and s.name.strip().casefold() not in rules.statuses
    ]
    names = {f.name.casefold() for f in catalog.custom_fields()}
    if rules.tenant_field.casefold() not in names:
        found.append(f"no custom field '{rules.tenant_field}': incidents import without tenants")
    return found


def incident_key(ref_or_url: str) -> str:
    """What the API's show endpoint takes for ``INC-2291``, ``2291``, an incident id, or an
    incident's URL (``https://app.incident.io/<org>/incidents/2291``); ``UsageError`` for
    anything else, a digit that is not ASCII (``INC-５``) included."""
    text = ref_or_url.strip()
    url = re.fullmatch(
        r"https?://[^/\s]+/(?:[^\s?#]*/)?incidents/([A-Za-z0-9-]+)/?(?:[?#]\S*)?", text
    )
    if url:
        text = url.group(1)
    # re.ASCII: \d would take any Unicode digit, and IGNORECASE would let the Kelvin sign
    # pass for k; incident.io would be asked for what no reference can be.
    ref = re.fullmatch(r"[A-Za-z]+-(\d+)", text, re.ASCII)
    if ref:
        return ref.group(1)
    if re.fullmatch(r"\d+|[0-9A-HJKMNP-TV-Z]{26}", text, re.IGNORECASE | re.ASCII):
        return text
    raise UsageError(
        f"'{ref_or_url[:80]}' is not an incident.io incident; give its reference (INC-2291) "
        "or its URL (https://app.incident.io/…/incidents/2291)"
    )
