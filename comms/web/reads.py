"""The store as one page request reads it: what the request already read is not read again.

A draft page asks the core for the send gate (which reads the draft's reviews) and then
shows the reviews again.  ``PageReads`` answers the repeats from what this request read
first: fewer round trips, each of which, on a busy server, waits for a core.  It lives as
long as one request that only reads, so a page shows one reading of the store, never
another request's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from comms.models import Review, Tenant
    from comms.ports import Store


class PageReads:
    """``store`` for one request: ``list_tenants``, ``get_tenant`` and ``reviews`` are read
    once; everything else goes to ``store`` as it is."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._tenants: dict[str, Tenant] | None = None
        self._reviews: dict[int, list[Review]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def list_tenants(self) -> list[Tenant]:
        """All tenants, by id (read once)."""
        if self._tenants is None:
            self._tenants = {t.id: t for t in self._store.list_tenants()}
        return list(self._tenants.values())

    def get_tenant(self, tenant_id: str) -> Tenant:
        """One tenant: from the tenants read already, if it was among them (else the
        store's answer, ``NotFoundError`` and all)."""
        known = self._tenants.get(tenant_id) if self._tenants is not None else None
        return known if known is not None else self._store.get_tenant(tenant_id)

    def reviews(self, draft_id: int) -> list[Review]:
        """Every review of a draft, oldest first (read once)."""
        if draft_id not in self._reviews:
            self._reviews[draft_id] = self._store.reviews(draft_id)
        return list(self._reviews[draft_id])
