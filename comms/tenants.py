"""Tenant records: adding one without replacing another by accident.

Core: takes the store port, does no I/O of its own.  What a valid tenant is (id, URL,
e-mail addresses, sizes) lives in :class:`comms.models.Tenant`, so that every way in
(``tenants add``, ``tenants import``, Switchboard sync, the stores) gets the same rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comms.errors import NotFoundError, UsageError
from comms.models import InvalidRecordError

if TYPE_CHECKING:
    from comms.models import Tenant
    from comms.ports import Store


def add_tenant(store: Store, tenant: Tenant, *, update: bool = False) -> bool:
    """Store ``tenant``; return True when it replaced a stored one.

    Refuses (``UsageError``) to replace an existing tenant unless ``update``: a second
    ``add`` of the same id is more often a slip than a wish to drop the stored contacts.
    The check and the write are one transaction, so two adds cannot both pass the check.
    """
    from comms.lint.secrets import refuse

    for field, value in (
        ("the tenant id", tenant.id),
        ("--name", tenant.name),
        ("--url", tenant.url),
    ):
        refuse(field, value or "")
    for alias in tenant.aliases:
        refuse("an alias", alias)
    with store.transaction():
        try:
            store.get_tenant(tenant.id)
            exists = True
        except NotFoundError:
            exists = False
        except InvalidRecordError:  # stored by an older version; replacing it is the fix
            exists = True
        if exists and not update:
            raise UsageError(
                f"tenant '{tenant.id}' exists; pass --update to replace it "
                f"(comms tenants list shows what is stored)"
            )
        store.put_tenant(tenant)
    return exists
