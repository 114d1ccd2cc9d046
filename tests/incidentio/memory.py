"""The webhook receiver's memory for tests that need no store: the core's in-process
``LocalWebhookMemory``, under the name the tests use."""

from __future__ import annotations

from comms.incidentio.webhooks import LocalWebhookMemory as MemoryWebhookMemory

__all__ = ["MemoryWebhookMemory"]
