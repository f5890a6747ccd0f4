"""The handlers run with handlers/ as the only import root (the Lambda zip layout) and handle an s3:TestEvent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"

SCRIPT = r"""
import json, sys
assert sys.argv[1] not in sys.path, sys.path  # the repository root is not an import root here
import thumbnailer.app as app
import notifier.app as notifier
record = {"messageId": "m1", "receiptHandle": "r", "body": json.dumps({"Event": "s3:TestEvent", "Bucket": "b"}),
          "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs"}
print(json.dumps([app.lambda_handler({"Records": [record]}, None),
                  notifier.lambda_handler({"Event": "s3:TestEvent"}, None)]))
"""


@pytest.mark.parametrize("backend", ["pillow", pytest.param("vips", marks=pytest.mark.vips)])
def test_zip_root_layout_imports_and_handles_a_test_event(backend: str, tmp_path: Path) -> None:
    env = {
        "PYTHONPATH": str(HANDLERS),
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "THUMB_BACKEND": backend,
        "THUMB_DLQ_URL": "http://127.0.0.1:9/000000000000/dlq",
        "NOTIFIER_QUEUE_URL": "http://127.0.0.1:9/q",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(HANDLERS.parent)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    thumb, notif = json.loads(lines[-1])
    assert thumb == {"batchItemFailures": []} and notif == {"sent": 0, "skipped": 1}
    logs = [json.loads(line) for line in lines[:-1] if line.startswith("{")]
    assert any(log.get("message") == "thumbnail record" and log.get("outcome") == "skipped" for log in logs)
