"""Script for the artifact's own interpreter (emulated arm64 or native): the real thumbnailer on local files, JSON out.

Run isolated (`python -I -S arm64_runner.py --site <unpacked zip> ...`): only the unpacked artifact and the
interpreter's standard library are importable, as in /var/task on Lambda (boto3, which the runtime provides, is not
needed: storage is replaced). The handler's own `Thumbnailer` (Powertools batch processing, events, pipeline,
resizers) handles an SQS batch of S3 notifications; its ObjectStore and DeadLetterSink ports are given folders on
disk. Writes one JSON report to --report; exits 1 if a backend failed to import or the run crashed, 2 on bad
arguments. Judging the thumbnails is the caller's job.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

INPUT_BUCKET = "uploads-bucket"
OUTPUT_BUCKET = "thumbnails-bucket"
SQS_BATCH = 10
RUN_ID = "arm64-check"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="arm64_runner.py")
    ap.add_argument("--site", required=True, type=Path, help="the unpacked artifact (Lambda's /var/task)")
    ap.add_argument("--inputs", required=True, type=Path, help="folder playing the source bucket (keys = paths)")
    ap.add_argument("--out", required=True, type=Path, help="outputs go to <out>/<backend>/<output key>")
    ap.add_argument("--report", required=True, type=Path, help="where to write the JSON report")
    ap.add_argument("--key", action="append", default=[], help="input key below --inputs (repeatable)")
    ap.add_argument("--backend", action="append", default=[], help="pillow | vips (repeatable; default both)")
    ap.add_argument("--sizes", default="large:1024x1024,small:256x256")
    ap.add_argument("--format", default="auto")
    return ap.parse_args(argv)


class FolderStore:
    """The handler's ObjectStore port over folders: bucket name -> folder, key -> relative path."""

    def __init__(self, buckets: dict[str, Path]) -> None:
        self.buckets = buckets
        self.puts: list[dict[str, Any]] = []

    def _path(self, bucket: str, key: str) -> Path:
        root = self.buckets[bucket].resolve()
        path = (root / key).resolve()
        if root not in path.parents:
            raise ValueError(f"Expected a key inside bucket {bucket!r} but received {key!r}")
        return path

    def get(self, bucket: str, key: str, *, version_id: str = "", max_bytes: int | None = None) -> Any:
        from thumbnailer.contract import META_RUN_ID
        from thumbnailer.errors import SourceMissing, TooManyBytes
        from thumbnailer.pipeline import SourceObject

        path = self._path(bucket, key)
        if not path.is_file():
            raise SourceMissing(f"Expected an object at s3://{bucket}/{key} but received none")
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise TooManyBytes(f"Expected at most {max_bytes} bytes for s3://{bucket}/{key} but received {size} bytes")
        data = path.read_bytes()
        return SourceObject(
            bucket=bucket, key=key, data=data, etag=hashlib.md5(data).hexdigest(), metadata={META_RUN_ID: RUN_ID}
        )

    def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.puts.append(
            {
                "bucket": bucket,
                "key": key,
                "bytes": len(data),
                "content_type": content_type,
                "cache_control": cache_control,
                "metadata": metadata,
            }
        )


class ListDeadLetter:
    """The handler's DeadLetterSink port: keeps the messages."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, body: str, attributes: dict[str, str]) -> None:
        self.messages.append({"body": json.loads(body), "attributes": attributes})


class Context:
    """The few Lambda context fields the handler reads."""

    aws_request_id = "arm64-runner"
    function_name = "thumbnailer"
    memory_limit_in_mb = 1769

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def sqs_event(keys: list[str], first_id: int) -> dict[str, Any]:
    """An SQS batch whose bodies are S3 notifications (keys form-encoded, as S3 sends them)."""
    records = []
    for i, key in enumerate(keys, start=first_id):
        body = {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": INPUT_BUCKET}, "object": {"key": quote_plus(key)}},
                }
            ]
        }
        records.append(
            {
                "messageId": f"msg-{i}",
                "receiptHandle": f"rh-{i}",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:thumbnails",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        from thumbnailer.app import Thumbnailer
        from thumbnailer.config import Settings
        from thumbnailer.resizers import get_resizer

        # input_prefix "": every key given is an upload (the bucket folder need not have an uploads/ level)
        settings = Settings(
            backend=backend,
            sizes=args.sizes,
            format=args.format,
            output_bucket=OUTPUT_BUCKET,
            input_prefix="",
            vips_threads=1,
        )
        resizer = get_resizer(backend, threads=1) if backend == "vips" else get_resizer(backend)
    except Exception as exc:  # the result we report: a wrong ELF machine or Python ABI fails right here
        return {"import_error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    entry: dict[str, Any] = {"import_s": round(time.perf_counter() - t0, 3), "module_files": _module_files(backend)}
    store = FolderStore({INPUT_BUCKET: args.inputs, OUTPUT_BUCKET: args.out / backend})
    dlq = ListDeadLetter()
    app = Thumbnailer(settings, store, dlq, resizer)
    failures: list[str] = []
    t1 = time.perf_counter()
    for start in range(0, len(args.key), SQS_BATCH):
        response = app.handle(sqs_event(args.key[start : start + SQS_BATCH], start), Context())
        failures += [f["itemIdentifier"] for f in response["batchItemFailures"]]
    entry.update(
        handle_s=round(time.perf_counter() - t1, 3),
        batch_item_failures=failures,
        puts=store.puts,
        dead_letters=dlq.messages,
    )
    return entry


def _module_files(backend: str) -> dict[str, str]:
    """Where the handler and the image library were imported from (proves the artifact, not the host, was used)."""
    names = ["thumbnailer", "aws_lambda_powertools"]
    names += ["PIL._imaging", "numpy"] if backend == "pillow" else ["pyvips", "_libvips"]
    return {name: str(getattr(sys.modules.get(name), "__file__", None)) for name in names}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    sys.path.insert(0, str(args.site.resolve()))
    report: dict[str, Any] = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "site": str(args.site.resolve()),
        "keys": args.key,
        "backends": {},
    }
    started = time.perf_counter()
    code = 0
    for backend in args.backend or ["pillow", "vips"]:
        try:
            report["backends"][backend] = entry = run_backend(backend, args)
        except Exception:  # a crash outside the handler's own error handling: report it, fail the run
            report["backends"][backend] = entry = {"crash": traceback.format_exc()}
        if "import_error" in entry or "crash" in entry:
            code = 1
    report["seconds"] = round(time.perf_counter() - started, 3)
    args.report.write_text(json.dumps(report, indent=1, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
