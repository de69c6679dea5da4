"""Schemathesis fuzzes the running service from its own /openapi.json: every operation, examples +
coverage + fuzzing phases, positive and negative data, a fixed seed. Passing means no 5xx and every
response conforms to what the OpenAPI documents (status code, content type, headers, body schema).

Size: PS_FUZZ_MAX_EXAMPLES per operation (default 300: ~1,500 requests, well under a minute);
`make fuzz` runs 2,500 per operation (> 10,000 requests). PS_FUZZ_SEED changes the seed.

Not checked: `positive_data_acceptance` / `negative_data_rejection`. POST /events deliberately answers
200 to a batch whose events break the schema (each bad event gets a field-named error in the answer,
the good ones are stored), and some rules are not in the schema (a country must be a real ISO code, a
window must be within the retention), so those two checks would flag documented behaviour. Nor
`missing_required_header`: the optional Bearer scheme (enforced only with --api-keys-file) is declared
on every operation, and the check reads a declared scheme as required.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support.clock import NOW_TEXT

MAX_EXAMPLES = int(os.environ.get("PS_FUZZ_MAX_EXAMPLES", "300"))
SEED = int(os.environ.get("PS_FUZZ_SEED", "20161201"))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "unsupported_method",
    ]
)


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    service_factory: Callable[..., str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    url = service_factory("fuzz", clock=NOW_TEXT)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
        "--workers",
        "1",
        "--suppress-health-check",
        "all",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=3600)
    output = done.stdout + done.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    generated = re.search(r"(\d+) generated", output)
    print(f"\n{' '.join(command)}\n{output[-1500:]}")
    assert done.returncode == 0, output[-6000:]
    assert generated is not None, output[-3000:]
    cases = int(generated.group(1))
    record_property("schemathesis_cases", cases)
    assert cases >= MAX_EXAMPLES, f"only {cases} test cases ran"
    assert re.search(r"Operations:\s+(\d+) selected / \1 total", output), "every operation is fuzzed"
