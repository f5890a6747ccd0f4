"""The load harness' accounting on the seed replica (STACK_PROFILE=seed) and on our pipeline, given the same input.

The same uploads go to both stacks: a full batch of ten (held back by a disabled mapping until all ten are queued),
then two same-named PNG files in different folders, one after the other. The seed replica processes Records[0] of a
batch only (the rest is deleted without output), writes `thumbnails/<width>/<file name>` (the second PNG overwrites
the first) and stores every thumbnail as image/jpeg. The accounting must name each of those causes on the seed and
report none of them on ours.
"""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from common.waiting import wait_until
from harness import emulator as emu
from harness.deployment import emulator_stack
from harness.load.accounting import LOST_DELETED, OVERWRITTEN, WRONG_CONTENT_TYPE
from harness.load.model import Accounting, PipelineTarget
from harness.load.observe import collect, settle
from harness.load.storage import AwsProbe
from harness.settings import HarnessSettings
from infra.deploy.apply import deploy
from infra.deploy.destroy import destroy
from infra.deploy.outputs import StackOutputs
from infra.seed_artifact import build_seed, default_output, host_arch

BURST = 10


def _image(fmt: str, colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def seed_outputs(emulator: emu.EmulatorHandle, harness_settings: HarnessSettings) -> Iterator[StackOutputs]:
    if not default_output(host_arch()).exists():
        build_seed(host_arch())
    stack, clients = emulator_stack(harness_settings, "seedacc", "seed")
    report = deploy(stack, clients)
    assert report.outputs is not None
    yield report.outputs
    destroy(stack, clients)


def _drive(outputs: StackOutputs, aws: Any, harness_settings: HarnessSettings) -> tuple[Accounting, PipelineTarget]:
    """Upload the burst and the same-named pair to `outputs`' pipeline, let it settle, account for every upload."""
    target = PipelineTarget.from_outputs(outputs)
    probe = AwsProbe.for_target(target, harness_settings)
    s3, lam = aws("s3"), aws("lambda")
    run_id = f"acc-{secrets.token_hex(3)}"
    prefix = target.run_prefix(run_id)
    probe.not_before_ms = time.time() * 1000 - 1000  # flat layout: earlier runs' outputs are not this run's
    uuid = outputs.event_source_mapping_uuid
    burst = [f"{prefix}burst/{n:03d}-photo.jpg" for n in range(BURST)]
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    try:
        _burst(s3, lam, aws("sqs"), probe, target, uuid, burst)
    finally:
        lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert settle(run_id, target, burst, timeout=180, probe=probe), "the burst did not settle"
    pair = [f"{prefix}a/same.png", f"{prefix}b/same.png"]
    for n, key in enumerate(pair):
        before = _etag(s3, target, pair, n)
        s3.put_object(
            Bucket=target.input_bucket, Key=key, Body=_image("PNG", (200, n * 90, 40)), ContentType="image/png"
        )

        def processed(key: str = key, before: str | None = before, n: int = n) -> bool:
            d = probe.depths()
            return d.visible + d.in_flight == 0 and _etag(s3, target, pair, n) not in (None, before)

        wait_until(processed, 120, what=f"{key} processed")
    return collect(run_id, target, burst + pair, probe=probe, read_logs=False), target


def _burst(s3: Any, lam: Any, sqs: Any, probe: AwsProbe, target: PipelineTarget, uuid: str, burst: list[str]) -> None:
    """All of the burst queued while the mapping is disabled: its batches are full when it is enabled again."""
    wait_until(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == "Disabled", 60, what="mapping disabled")
    # The bucket's s3:TestEvent (sent when the deploy set its notification) may still be queued: in a batch with the
    # burst the seed's handler would throw on it and fail the whole batch for 3 x 60 s (that path is in the load
    # report's "DLQ: s3:TestEvent" row). Here the burst is a batch of its own uploads only, on both stacks.
    sqs.purge_queue(QueueUrl=target.queue_url)
    wait_until(lambda: probe.depths().visible + probe.depths().in_flight == 0, 30, what="the queue purged")
    for n, key in enumerate(burst):
        body = _image("JPEG", (n * 20, 80, 160))
        s3.put_object(Bucket=target.input_bucket, Key=key, Body=body, ContentType="image/jpeg")
    # a lane's long poll still open when the mapping was disabled puts what it receives back (the executor's
    # esm_concurrency), so the whole burst stays queued and the batches are full when the mapping is enabled again
    wait_until(lambda: probe.depths().visible >= len(burst), 45, what="the burst queued")


def _etag(s3: Any, target: PipelineTarget, pair: list[str], n: int) -> str | None:
    """The ETag of upload `n`'s smallest thumbnail (its flat or mirrored key), None while there is none."""
    size = target.sizes[-1]
    if target.flat:
        key = f"{target.output_prefix}{size}/same.png"
    else:
        listed = s3.list_objects_v2(Bucket=target.output_bucket, Prefix=target.output_stem(size, pair[n]))
        keys = [o["Key"] for o in listed.get("Contents", [])]
        if not keys:
            return None
        key = keys[0]
    try:
        return str(s3.head_object(Bucket=target.output_bucket, Key=key)["ETag"])
    except s3.exceptions.ClientError:
        return None


def test_the_seed_profile_loses_batch_mates_overwrites_same_names_and_labels_png_as_jpeg(
    seed_outputs: StackOutputs, aws: Any, harness_settings: HarnessSettings
) -> None:
    acc, target = _drive(seed_outputs, aws, harness_settings)
    # the layout comes from the deploy outputs: one bucket, thumbnails/<width>/<file name>, widths 50/150/300
    assert target.flat and target.input_bucket == target.output_bucket
    assert set(target.sizes) == {"50", "150", "300"}
    causes = acc.to_dict()["causes"]
    assert acc.invariant_holds
    assert acc.lost > 0, acc.to_dict()
    # at least 9 of the burst's 10 had no output and no DLQ entry, and the queue was drained: deleted without output
    assert causes[LOST_DELETED] >= BURST - 2, causes
    assert causes[OVERWRITTEN] == 1, causes
    assert acc.by_key()[f"{target.run_prefix(acc.run_id)}b/same.png"].outcome.value == "complete"
    assert causes[WRONG_CONTENT_TYPE] >= 1, causes
    assert acc.lost == causes[LOST_DELETED] + causes[OVERWRITTEN]


def test_our_pipeline_given_the_same_input_loses_nothing_and_names_no_cause(
    pipeline: StackOutputs, aws: Any, harness_settings: HarnessSettings
) -> None:
    acc, target = _drive(pipeline, aws, harness_settings)
    assert not target.flat
    causes = acc.to_dict()["causes"]
    assert acc.invariant_holds
    assert acc.lost == 0, acc.to_dict()
    assert acc.counts["complete"] == BURST + 2
    assert causes[LOST_DELETED] == causes[OVERWRITTEN] == causes[WRONG_CONTENT_TYPE] == 0, causes
