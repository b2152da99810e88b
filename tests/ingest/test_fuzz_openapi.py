"""schemathesis against the OpenAPI document the server serves (``GET /api/v1/openapi.json``), over
real HTTP, with a fixed, small example budget per operation (seeded: the same cases every run).

Checks: never a 5xx; every status, content type and body as the document says; data the document
calls invalid is refused. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.ingest.conftest import TOKEN  # noqa: E402

EXAMPLES = 40  # per operation and mode: the whole run stays within seconds
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def operations(base: str):
    # The bearer token is sent with every case (below): not generated, nor left out in negative cases.
    config = SchemathesisConfig.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json", config=config)
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 6, [op.label for op in found]
    return found


def fuzz(operation, mode, base: str, checks: list) -> None:
    """``EXAMPLES`` generated cases of ``operation``, each sent over HTTP and checked."""

    @seed(11)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        case.validate_response(response, checks=checks)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_every_operation_answers_as_its_document_says(ingest, mode):
    base = f"http://127.0.0.1:{ingest.server.port}"
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    failures: list[str] = []
    for operation in operations(base):
        try:
            fuzz(operation, mode, base, checks)
        except Unsatisfiable:  # nothing in this operation can be made invalid (a free-form path id): no negative case
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # every operation's first failure, then one assertion
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
