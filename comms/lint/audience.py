"""Who a checked text is for, and whose names it must not contain (no heavy imports)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from comms.models import Tenant


def lint_audience(known: Sequence[Tenant], label: str | None) -> tuple[str | None, list[str]]:
    """For ``comms lint --tenant LABEL``: the audience's display name, and every other known
    tenant's id, name and aliases (which the text must not contain).

    ``LABEL`` may be a tenant's id, name or alias, in any case; an unknown label is used as
    the audience's name as given.
    """
    names: list[str] = []
    audience = label
    own: set[str] = set()
    for tenant in known:
        labels = [tenant.id, tenant.name, *tenant.aliases]
        if label is not None and label.lower() in {x.lower() for x in labels}:
            audience = tenant.name
            own = {x.lower() for x in labels}
        names.extend(labels)
    return audience, [n for n in names if n.lower() not in own]
