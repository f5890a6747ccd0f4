"""The stack on the emulator: a real awslocal upload makes thumbnails; deploy is idempotent; destroy leaves nothing."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from common.waiting import wait_until
from harness.aws import cli_environment
from harness.deployment import emulator_clients
from harness.paths import PROJECT_VENV
from harness.settings import HarnessSettings
from infra.deploy.apply import deploy
from infra.deploy.describe import describe
from infra.deploy.destroy import destroy
from infra.deploy.outputs import SCHEMA_VERSION, StackOutputs
from infra.deploy.target import stack_for_target

UPLOAD_TO_THUMBNAILS_TIMEOUT_S = 90.0


def _photo(path: Path, size: tuple[int, int] = (1600, 1200)) -> Image.Image:
    """A photo-like gradient with a bright square (so a wrong crop or a wrong aspect shows in the distance)."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    rgb = np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)), np.full((h, w), 90.0)], axis=-1)
    rgb[h // 4 : h // 2, w // 4 : w // 2] = 250.0
    image = Image.fromarray(rgb.astype(np.uint8), "RGB")
    image.save(path, "JPEG", quality=90)
    return image


def _distance(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0-255) after bringing b to a's size."""
    arr_a = np.asarray(a.convert("RGB"), dtype=np.float32)
    arr_b = np.asarray(b.convert("RGB").resize(a.size), dtype=np.float32)
    return float(np.abs(arr_a - arr_b).mean())


def _awslocal(settings: HarnessSettings, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("awslocal", path=str(PROJECT_VENV / "bin")) or shutil.which("awslocal")
    assert exe, "awslocal (awscli-local) is not installed in the project venv"
    env = {**os.environ, **cli_environment(settings), "PATH": f"{PROJECT_VENV / 'bin'}:{os.environ.get('PATH', '')}"}
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_awslocal_upload_produces_thumbnails_in_the_output_bucket(
    pipeline: StackOutputs, harness_settings: HarnessSettings, aws: Callable[..., Any], tmp_path: Path
) -> None:
    # GIVEN the deployed default stack and a 1600x1200 photo
    source = _photo(tmp_path / "photo.jpg")
    run = uuid.uuid4().hex[:8]
    key = f"{pipeline.input_prefix}stack-test/{run}/photo.jpg"
    # WHEN the real AWS CLI (through awslocal, pointed at our port) uploads it
    result = _awslocal(harness_settings, "s3", "cp", str(tmp_path / "photo.jpg"), f"s3://{pipeline.input_bucket}/{key}")
    assert result.returncode == 0, result.stderr
    # THEN both thumbnails appear in the separate output bucket, with the right size and content
    s3 = aws("s3")
    rel = key[len(pipeline.input_prefix) :]
    expected = {"large": (1024, 768), "small": (256, 192)}
    keys = {name: f"{pipeline.output_prefix}{name}/{rel}.jpg" for name in expected}

    def all_there() -> bool:
        return all(
            any(o["Key"] == k for o in s3.list_objects_v2(Bucket=pipeline.output_bucket, Prefix=k).get("Contents", []))
            for k in keys.values()
        )

    wait_until(all_there, UPLOAD_TO_THUMBNAILS_TIMEOUT_S, interval=0.2, what=f"thumbnails of {key}")
    for name, key_out in keys.items():
        body = s3.get_object(Bucket=pipeline.output_bucket, Key=key_out)["Body"].read()
        thumb = Image.open(io.BytesIO(body))
        assert thumb.size == expected[name]
        assert _distance(thumb, source) < 8.0, f"{name} thumbnail does not look like the source"
    # nothing was written back into the input bucket (the DLQ is shared with other tests: not asserted here)
    inputs = s3.list_objects_v2(Bucket=pipeline.input_bucket, Prefix=f"{pipeline.input_prefix}stack-test/{run}/")
    assert [o["Key"] for o in inputs.get("Contents", [])] == [key]


def _leftovers(aws: Callable[..., Any], name: str) -> list[str]:
    """Every resource on the emulator whose name belongs to stack `name`."""
    found = [
        f"bucket {b['Name']}" for b in aws("s3").list_buckets().get("Buckets", []) if b["Name"].startswith(f"{name}-")
    ]
    found += [f"queue {u}" for u in aws("sqs").list_queues(QueueNamePrefix=f"{name}-").get("QueueUrls", [])]
    lam = aws("lambda")
    found += [
        f"function {f['FunctionName']}"
        for f in lam.get_paginator("list_functions").paginate().build_full_result().get("Functions", [])
        if f["FunctionName"].startswith(f"{name}-")
    ]
    found += [
        f"mapping {m['UUID']}"
        for m in lam.get_paginator("list_event_source_mappings")
        .paginate()
        .build_full_result()
        .get("EventSourceMappings", [])
        if f":{name}-" in m.get("EventSourceArn", "")
    ]
    found += [
        f"role {r['RoleName']}"
        for r in aws("iam").list_roles().get("Roles", [])
        if r["RoleName"].startswith(f"{name}-")
    ]
    found += [
        f"log group {g['logGroupName']}"
        for g in aws("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}-").get("logGroups", [])
    ]
    return found


@pytest.mark.slow
def test_deploy_twice_changes_nothing_updates_in_place_and_destroy_leaves_nothing(
    emulator: Any, harness_settings: HarnessSettings, aws: Callable[..., Any]
) -> None:
    name = f"idem-{uuid.uuid4().hex[:6]}"  # its own stack: the shared `thumbs` stays untouched
    clients = emulator_clients(harness_settings)
    stack = stack_for_target(clients, name, "default")
    try:
        first = deploy(stack, clients)
        assert f"created function {name}-thumbnailer" in first.changes
        assert f"created event source mapping {name}-jobs -> {name}-thumbnailer" in first.changes
        assert first.outputs.input_bucket == f"{name}-input" and first.outputs.function_name == stack.function.name

        second = deploy(stack, clients)
        assert second.changes == [], second.changes
        assert "no changes" in second.summary()[0]
        assert second.outputs == first.outputs

        changed = stack_for_target(clients, name, "default", {"memory_mb": "2048", "visibility_timeout_s": "240"})
        third = deploy(changed, clients)
        assert sorted(third.changes) == sorted(
            [
                f"updated function {name}-thumbnailer: MemorySize 1536 -> 2048",
                f"updated queue {name}-jobs: VisibilityTimeout 190 -> 240",
            ]
        )
        cfg = aws("lambda").get_function_configuration(FunctionName=stack.function.name)
        assert cfg["MemorySize"] == 2048 and cfg["FunctionArn"] == first.outputs.function_arn  # in place
        assert any("state: Enabled" in line or ": Enabled " in line for line in describe(changed, clients))

        # a versioned object in the input bucket: destroy must remove every version to delete the bucket
        aws("s3").put_object(Bucket=f"{name}-input", Key="elsewhere/a.txt", Body=b"1")
        aws("s3").put_object(Bucket=f"{name}-input", Key="elsewhere/a.txt", Body=b"2")
    finally:
        report = destroy(stack, clients)
    assert any(d.startswith(f"bucket {name}-input (2 object version") for d in report.deleted), report.deleted
    assert _leftovers(aws, name) == []
    assert destroy(stack, clients).deleted == []  # idempotent too


@pytest.mark.slow
def test_notifier_topology_delivers_uploads_through_the_notifier(
    emulator: Any, harness_settings: HarnessSettings, aws: Callable[..., Any], tmp_path: Path
) -> None:
    # GIVEN a stack in the second topology: S3 -> notifier function -> SQS -> thumbnailer
    name = f"ntf-{uuid.uuid4().hex[:6]}"
    clients = emulator_clients(harness_settings)
    stack = stack_for_target(clients, name, "default", {"topology": "notifier"})
    try:
        report = deploy(stack, clients)
        assert f"allowed {name}-input to invoke {name}-notifier" in report.changes
        assert f"configured notification {name}-input uploads/* -> {name}-notifier" in report.changes
        assert deploy(stack, clients).changes == []
        # WHEN a photo is uploaded
        _photo(tmp_path / "p.jpg", (800, 600))
        aws("s3").put_object(Bucket=f"{name}-input", Key="uploads/n/p.jpg", Body=(tmp_path / "p.jpg").read_bytes())
        # THEN the thumbnails arrive (the notifier's message went through the queue to the thumbnailer)
        s3 = aws("s3")
        wanted = {"thumbnails/large/n/p.jpg.jpg", "thumbnails/small/n/p.jpg.jpg"}
        wait_until(
            lambda: wanted <= {o["Key"] for o in s3.list_objects_v2(Bucket=f"{name}-output").get("Contents", [])},
            UPLOAD_TO_THUMBNAILS_TIMEOUT_S,
            interval=0.2,
            what="thumbnails via the notifier",
        )
        small = Image.open(
            io.BytesIO(s3.get_object(Bucket=f"{name}-output", Key="thumbnails/small/n/p.jpg.jpg")["Body"].read())
        )
        assert small.size == (256, 192)
        # AND switching back to the direct topology rewires S3 to the queue and removes the notifier
        direct = deploy(stack_for_target(clients, name, "default"), clients)
        assert f"configured notification {name}-input uploads/* -> {name}-jobs" in direct.changes
        assert f"deleted function {name}-notifier (no longer in the definition)" in direct.changes
        assert [f for f in _leftovers(aws, name) if "notifier" in f] == []
    finally:
        deleted = destroy(stack, clients).deleted
    assert f"function {name}-thumbnailer" in deleted
    assert _leftovers(aws, name) == []


def test_harness_entry_points_write_outputs_and_describe_the_stack(
    emulator: Any, harness_settings: HarnessSettings, aws: Callable[..., Any]
) -> None:
    from harness.deployment import deploy_for_harness, describe_for_harness, outputs_file, read_stack_outputs
    from infra.deploy.outputs import read_outputs

    name = f"hx-{uuid.uuid4().hex[:6]}"
    clients = emulator_clients(harness_settings)
    try:
        report = deploy_for_harness(harness_settings, stack_name=name)
        path = outputs_file(harness_settings, name)
        assert path == harness_settings.home / "outputs" / f"{name}.json"
        assert read_outputs(path) == report.outputs == read_stack_outputs(harness_settings, name)
        assert report.outputs is not None and report.outputs.schema_version == SCHEMA_VERSION
        assert {
            "input_bucket",
            "output_bucket",
            "queue_url",
            "queue_arn",
            "dlq_url",
            "dlq_arn",
            "function_name",
            "stack_name",
            "sizes",
            "event_source_mapping_uuid",
        } <= set(report.outputs.to_dict())
        assert report.outputs.size_names == ("large", "small")
        assert report.summary()[0].endswith(f"{len(report.changes)} change(s)") and report.changes
        lines = describe_for_harness(harness_settings, stack_name=name)
        assert lines[0] == f"stack {name} (profile default)"
        assert any(f"queue    {name}-dlq: 0 visible, 0 in flight" in line for line in lines), lines
        assert not [line for line in lines if "MISSING" in line], lines
    finally:
        destroy(stack_for_target(clients, name, "default"), clients)
        outputs_file(harness_settings, name).unlink(missing_ok=True)
    assert _leftovers(aws, name) == []


@pytest.mark.slow
def test_seed_profile_single_bucket_does_not_loop(
    emulator: Any, harness_settings: HarnessSettings, aws: Callable[..., Any], tmp_path: Path
) -> None:
    # GIVEN the seed's single-bucket layout (thumbnails/ inside the input bucket), deployed despite its warnings
    name = f"seed-{uuid.uuid4().hex[:6]}"
    clients = emulator_clients(harness_settings)
    # our handler in the seed's layout (the seed profile itself now deploys the Node.js seed replica)
    overrides = {"function_impl": "thumbnailer", "report_batch_item_failures": True}
    stack = stack_for_target(clients, name, "seed", overrides)
    try:
        report = deploy(stack, clients)
        assert {f.code for f in report.findings} == {"STK002", "STK007", "STK009", "STK010"}
        assert any(line.startswith("  WARNING STK002") for line in report.summary())
        bucket = report.outputs.input_bucket
        assert report.outputs.output_bucket == bucket
        # WHEN a photo is uploaded
        _photo(tmp_path / "p.jpg", (640, 480))
        s3 = aws("s3")
        s3.put_object(Bucket=bucket, Key="uploads/s/p.jpg", Body=(tmp_path / "p.jpg").read_bytes())
        # THEN its thumbnails land under thumbnails/ of the same bucket ...
        # (the seed profile's sizes, as deployed: names before ':' in SIZES, e.g. 50:50x50,150:150x150,300:300x300)
        names = [spec.split(":", 1)[0] for spec in (report.outputs.sizes or "").split(",") if spec]
        assert len(names) >= 2, report.outputs.sizes
        wanted = {f"thumbnails/{n}/s/p.jpg.jpg" for n in names}

        def listing() -> set[str]:
            return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}

        wait_until(lambda: wanted <= listing(), UPLOAD_TO_THUMBNAILS_TIMEOUT_S, interval=0.2, what="seed thumbnails")
        # ... and the thumbnails trigger nothing: the queue drains and no thumbnail of a thumbnail appears
        sqs = aws("sqs")

        def drained() -> bool:
            attrs = sqs.get_queue_attributes(
                QueueUrl=report.outputs.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            return attrs["ApproximateNumberOfMessages"] == attrs["ApproximateNumberOfMessagesNotVisible"] == "0"

        wait_until(drained, UPLOAD_TO_THUMBNAILS_TIMEOUT_S, interval=0.2, what="seed queue drained")
        assert listing() == wanted | {"uploads/s/p.jpg"}
    finally:
        destroy(stack, clients)
    assert _leftovers(aws, name) == []
