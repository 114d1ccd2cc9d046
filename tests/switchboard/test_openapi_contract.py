"""Property-based tests of the stub against its own OpenAPI document (schemathesis).

Each operation gets a few generated requests (valid and invalid) sent over real HTTP to a stub
on 127.0.0.1; schemathesis checks status codes, content types, headers and response bodies
against ``/openapi.json`` and that nothing answers 500.  Bounded: few examples, a deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from comms.adapters.stub_server import serve_in_thread
from comms.adapters.switchboard_openapi import openapi_document

TOKEN = "contract-token"
# Two documented 422s depend on state, which a schema cannot express: tenant_ids naming no
# existing tenant, and an Idempotency-Key reused (across examples) for another request.
# Schema-valid POSTs may therefore get them.
CONFIG = schemathesis.Config.from_dict(
    {
        "operations": [
            {
                "include-method": "POST",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "401", "404", "409", "422", "429", "5xx"],
                    }
                },
            }
        ],
    }
)
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db_path: Path = tmp_path_factory.mktemp("contract") / "switchboard.db"
    with serve_in_thread(db_path, token=TOKEN) as url:
        yield url


def test_the_served_document_is_the_one_tested(live: str) -> None:
    with httpx.Client(base_url=live) as client:
        served = client.get("/openapi.json").json()
    assert served == openapi_document()
    operations = {op for path in served["paths"].values() for op in path}
    assert operations == {"get", "post"}
    assert len(list(schema.get_all_operations())) == 8


OPERATIONS = [
    "listTenants",
    "getTenant",
    "listTemplates",
    "listNotifications",
    "createNotification",
    "getNotification",
    "previewNotification",
    "sendNotification",
]


# Plain hypothesis over schemathesis strategies rather than ``@schema.parametrize()``: that
# needs schemathesis's pytest plugin, which costs every test run of the project ~1.5 s.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_the_stub_conforms_to_its_openapi_document(
    live: str, operation_id: str, mode: GenerationMode
) -> None:
    operation = schema.find_operation_by_id(operation_id)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=8,
        deadline=2000,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: Any) -> None:
        case.call_and_validate(base_url=live, headers={"Authorization": f"Bearer {TOKEN}"})

    conforms()
