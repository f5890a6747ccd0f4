"""The seed replica (handlers/seed, nodejs20.x, sharp + AWS SDK v3) from its make-built zip on the embedded emulator.

It is invoked directly with SQS events whose messages are real (sent to and received from a queue), so what it
deletes and what it leaves is visible in the queue. Its flaws are its specification: only Records[0] is processed
and deleted by the handler, keys are used undecoded, every thumbnail is stored as image/jpeg.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from common.waiting import wait_until
from tests.lambdas import LAMBDA_ROLE, unique_name

SEED_DIR = Path(__file__).resolve().parents[2] / "handlers" / "seed"
WIDTHS = (50, 150, 300)


@pytest.fixture(scope="module")
def seed_zip() -> bytes:
    """The zip `make package-seed` builds for this machine's architecture (built here if missing or stale)."""
    from infra.seed_artifact import SOURCES, build_seed, default_output, host_arch

    path = default_output(host_arch())
    newest_source = max((SEED_DIR / name).stat().st_mtime for name in SOURCES)
    if not path.exists() or path.stat().st_mtime < newest_source:
        build_seed(host_arch())
    with zipfile.ZipFile(path) as zf:
        assert "index.js" in zf.namelist()
    return path.read_bytes()


class SeedWorld:
    """A bucket, a queue and the seed function (its code from the zip); everything removed afterwards."""

    def __init__(self, aws: Callable[..., Any], code: bytes) -> None:
        self.s3, self.sqs, self.lam, self.logs = aws("s3"), aws("sqs"), aws("lambda"), aws("logs")
        self.name = unique_name("seed")
        self.bucket = self.name
        self.s3.create_bucket(Bucket=self.bucket)
        self.queue_url = self.queue_arn = ""
        self.lam.create_function(
            FunctionName=self.name,
            Runtime="nodejs20.x",
            Role=LAMBDA_ROLE,
            Handler="index.handler",
            Code={"ZipFile": code},
            Timeout=60,
            MemorySize=512,
        )
        wait_until(
            lambda: self.lam.get_function(FunctionName=self.name)["Configuration"]["State"] == "Active",
            60,
            what="seed function Active",
        )

    def reset(self) -> None:
        """A new, empty queue and no objects: each test starts from nothing (the function stays warm)."""
        if self.queue_url:
            self.sqs.delete_queue(QueueUrl=self.queue_url)
        self.queue_url = self.sqs.create_queue(
            QueueName=unique_name(self.name), Attributes={"VisibilityTimeout": "60"}
        )["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        for item in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", []):
            self.s3.delete_object(Bucket=self.bucket, Key=item["Key"])

    def upload(self, key: str, data: bytes, content_type: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def notification(self, key_in_event: str) -> str:
        """The body S3 sends to SQS for one ObjectCreated:Put (keys arrive URL-encoded, as S3 encodes them)."""
        return json.dumps(
            {
                "Records": [
                    {
                        "eventVersion": "2.1",
                        "eventSource": "aws:s3",
                        "awsRegion": "us-east-1",
                        "eventName": "ObjectCreated:Put",
                        "s3": {
                            "bucket": {"name": self.bucket, "arn": f"arn:aws:s3:::{self.bucket}"},
                            "object": {"key": key_in_event, "size": 1},
                        },
                    }
                ]
            }
        )

    def receive_batch(self, bodies: list[str]) -> dict:
        """Send the bodies, receive them all (now in flight), and shape them as the SQS event of one batch."""
        self.sqs.send_message_batch(
            QueueUrl=self.queue_url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        )
        messages: list[dict] = []

        def received() -> bool:
            messages.extend(
                self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                    "Messages", []
                )
            )
            return len(messages) >= len(bodies)

        wait_until(received, 20, what=f"{len(bodies)} messages received")
        by_body = {m["Body"]: m for m in messages}
        ordered = [by_body[b] for b in bodies]
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                }
                for m in ordered
            ]
        }

    def invoke(self, event: dict) -> tuple[Any, str | None]:
        resp = self.lam.invoke(FunctionName=self.name, Payload=json.dumps(event).encode())
        return json.loads(resp["Payload"].read() or b"null"), resp.get("FunctionError")

    def in_flight(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def thumbnails(self) -> dict[str, tuple[str, bytes]]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="thumbnails/").get("Contents", [])
        out = {}
        for item in listed:
            obj = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])
            out[item["Key"]] = (obj["ContentType"], obj["Body"].read())
        return out

    def close(self) -> None:
        self.lam.delete_function(FunctionName=self.name)
        try:
            self.logs.delete_log_group(logGroupName=f"/aws/lambda/{self.name}")
        except self.logs.exceptions.ResourceNotFoundException:
            pass
        self.reset()
        self.sqs.delete_queue(QueueUrl=self.queue_url)
        self.s3.delete_bucket(Bucket=self.bucket)


@pytest.fixture(scope="module")
def seed_world(aws: Callable[..., Any], seed_zip: bytes) -> Iterator[SeedWorld]:
    w = SeedWorld(aws, seed_zip)
    yield w
    w.close()


@pytest.fixture()
def world(seed_world: SeedWorld) -> SeedWorld:
    seed_world.reset()
    return seed_world


def image_bytes(fmt: str, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buf, fmt)
    return buf.getvalue()


def test_the_seed_zip_writes_three_thumbnails_of_records_0_only_and_deletes_that_message(world: SeedWorld) -> None:
    # GIVEN three uploads in two folders and one batch carrying their three notifications
    world.upload("uploads/holiday/cat.jpg", image_bytes("JPEG", (640, 480)), "image/jpeg")
    world.upload("uploads/work/dog.jpg", image_bytes("JPEG", (800, 600)), "image/jpeg")
    world.upload("uploads/work/bird.jpg", image_bytes("JPEG", (400, 400)), "image/jpeg")
    event = world.receive_batch(
        [world.notification(k) for k in ("uploads/holiday/cat.jpg", "uploads/work/dog.jpg", "uploads/work/bird.jpg")]
    )

    # WHEN the seed function gets the batch
    payload, error = world.invoke(event)

    # THEN it succeeds having made thumbnails/<width>/<file name> of the first record only, all image/jpeg...
    assert error is None, payload
    thumbs = world.thumbnails()
    assert sorted(thumbs) == sorted(f"thumbnails/{w}/cat.jpg" for w in WIDTHS)
    for width in WIDTHS:
        content_type, data = thumbs[f"thumbnails/{width}/cat.jpg"]
        with Image.open(io.BytesIO(data)) as img:
            assert content_type == "image/jpeg" and img.format == "JPEG"
            assert img.width == width and abs(img.height - width * 480 / 640) <= 1  # fit contain on a width
    # ...and deleted that message itself: the two others are still in flight, never processed
    wait_until(lambda: world.in_flight() == 2, 10, what="two messages left in flight")


def test_a_png_upload_gets_png_thumbnails_labelled_image_jpeg(world: SeedWorld) -> None:
    world.upload("uploads/logo.png", image_bytes("PNG", (300, 100)), "image/png")

    payload, error = world.invoke(world.receive_batch([world.notification("uploads/logo.png")]))

    assert error is None, payload
    thumbs = world.thumbnails()
    assert sorted(thumbs) == sorted(f"thumbnails/{w}/logo.png" for w in WIDTHS)
    for content_type, data in thumbs.values():
        with Image.open(io.BytesIO(data)) as img:
            assert (content_type, img.format) == ("image/jpeg", "PNG")


def test_an_s3_test_event_throws_and_an_encoded_key_is_not_found(world: SeedWorld) -> None:
    world.upload("uploads/my photo.jpg", image_bytes("JPEG", (64, 64)), "image/jpeg")
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": world.bucket})

    test_payload, test_error = world.invoke(world.receive_batch([test_event]))
    encoded_payload, encoded_error = world.invoke(world.receive_batch([world.notification("uploads/my+photo.jpg")]))

    assert test_error == "Unhandled" and test_payload["errorType"] == "TypeError"
    assert encoded_error == "Unhandled" and encoded_payload["errorType"] == "NoSuchKey"
    assert world.thumbnails() == {}
    assert world.in_flight() == 2  # neither was deleted: both come back after the visibility timeout
