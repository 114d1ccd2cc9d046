"""The ``WebhookMemory`` contract on the core's in-process ``LocalWebhookMemory`` (what
``comms serve`` would use on a store that kept none): the contract suite's tests that need
no database, run here on it."""

from __future__ import annotations

import pytest

from comms.incidentio.webhooks import LocalWebhookMemory, WebhookMemory
from tests.contract.test_webhook_memory_contract import (  # noqa: F401 - collected here too
    test_a_delivery_is_claimed_once,
    test_a_recorded_delivery_is_seen,
    test_a_released_claim_can_be_taken_again,
    test_ids_are_kept_while_a_replay_could_still_pass_the_timestamp_check,
    test_microseconds_count,
    test_older_ids_are_forgotten,
    test_the_newest_state_only_moves_forward,
)


@pytest.fixture
def memory() -> WebhookMemory:
    return LocalWebhookMemory()
