"""STACK_PROFILE=seed on the embedded emulator: the seed replica deployed with its settings, an upload through S3."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from common.waiting import wait_until
from harness import emulator as emu
from harness.deployment import emulator_stack
from harness.settings import HarnessSettings
from infra.deploy.apply import deploy
from infra.deploy.destroy import destroy
from infra.seed_artifact import build_seed, default_output, host_arch
from infra.stack import Stack

WIDTHS = (50, 150, 300)


@pytest.fixture(scope="module")
def seed_stack(emulator: emu.EmulatorHandle, harness_settings: HarnessSettings) -> Iterator[tuple[Stack, Any]]:
    if not default_output(host_arch()).exists():
        build_seed(host_arch())
    stack, clients = emulator_stack(harness_settings, "seedrep", "seed")
    report = deploy(stack, clients)
    yield stack, report.outputs
    destroy(stack, clients)


def test_the_seed_profile_deploys_its_settings(seed_stack: tuple[Stack, Any], aws: Any) -> None:
    stack, outputs = seed_stack
    fn = aws("lambda").get_function_configuration(FunctionName=outputs.function_name)
    mapping = aws("lambda").get_event_source_mapping(UUID=outputs.event_source_mapping_uuid)
    attrs = aws("sqs").get_queue_attributes(QueueUrl=outputs.queue_url, AttributeNames=["All"])["Attributes"]

    assert (fn["Runtime"], fn["Handler"], fn["Timeout"]) == ("nodejs20.x", "index.handler", 60)
    assert attrs["VisibilityTimeout"] == "60" and int(json.loads(attrs["RedrivePolicy"])["maxReceiveCount"]) == 3
    assert mapping["BatchSize"] == 10 and not mapping.get("FunctionResponseTypes")
    assert mapping.get("MaximumBatchingWindowInSeconds", 0) == 0
    assert outputs.output_bucket == outputs.input_bucket


def test_an_upload_becomes_three_thumbnails_in_the_same_bucket(seed_stack: tuple[Stack, Any], aws: Any) -> None:
    _, outputs = seed_stack
    s3 = aws("s3")
    buf = io.BytesIO()
    Image.new("RGB", (600, 400), (10, 120, 200)).save(buf, "JPEG")
    s3.put_object(
        Bucket=outputs.input_bucket,
        Key=f"{outputs.input_prefix}trip/harbour.jpg",
        Body=buf.getvalue(),
        ContentType="image/jpeg",
    )

    def thumbnails() -> list[str]:
        listed = s3.list_objects_v2(Bucket=outputs.input_bucket, Prefix="thumbnails/").get("Contents", [])
        keys = sorted(item["Key"] for item in listed)
        return keys if len(keys) == len(WIDTHS) else []

    keys = wait_until(thumbnails, 90, what="three seed thumbnails")
    assert keys == sorted(f"thumbnails/{w}/harbour.jpg" for w in WIDTHS)
    for width in WIDTHS:
        obj = s3.get_object(Bucket=outputs.input_bucket, Key=f"thumbnails/{width}/harbour.jpg")
        assert obj["ContentType"] == "image/jpeg"
        with Image.open(io.BytesIO(obj["Body"].read())) as img:
            assert img.width == width
