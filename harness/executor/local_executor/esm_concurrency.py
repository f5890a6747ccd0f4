"""SQS event-source mappings with N parallel lanes (ScalingConfig.MaximumConcurrency), patched in at start-up."""

from __future__ import annotations

import logging
import threading

from localstack.config import (
    LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_ERROR_SEC,
    LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC,
)
from localstack.services.lambda_.event_source_mapping.esm_worker import EsmWorker
from localstack.services.lambda_.event_source_mapping.pollers.poller import EmptyPollResultsException
from localstack.services.lambda_.event_source_mapping.pollers.sqs_poller import SqsPoller
from localstack.utils.backoff import ExponentialBackoff

from .executor import settings
from .scaling import lanes_for

LOG = logging.getLogger("localstack.harness.local_executor")
_PATCHED = "_harness_lanes_patched"
LANE_JOIN_TIMEOUT_S = 30.0
PARK_CHECK_S = 1.0  # how often a parked lane looks at the shutdown flag (no request is made)


def _lane(worker: EsmWorker, index: int, poll_events, active: threading.Event) -> None:
    """An extra poll/invoke loop on the same poller. It polls only while the mapping is busy (`active`: some lane
    just received messages) and parks on the event when a poll comes back empty, so an idle mapping costs one lane.
    SqsPoller.poll_events is safe to call from several threads: it keeps no per-call state on the instance, boto3
    clients are thread-safe and SQS hides in-flight messages from the other lanes."""
    error_boff = ExponentialBackoff(  # type: ignore[call-arg]  # a pydantic dataclass: the rest have defaults
        initial_interval=2, max_interval=LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_ERROR_SEC
    )
    shutdown = worker._shutdown_event
    while not shutdown.is_set():
        if not active.wait(PARK_CHECK_S):
            continue
        interval = LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC
        try:
            poll_events()
            error_boff.reset()
        except EmptyPollResultsException:
            active.clear()
        except Exception as exc:  # noqa: BLE001 (same policy as LocalStack's own loop)
            LOG.error("lane %d of mapping %s: error while polling: %s", index, worker.uuid, exc)
            interval = error_boff.next_backoff()
        shutdown.wait(interval)


def _empty_is_fine(poll_events):
    """After a long poll an empty answer needs no back-off (LocalStack's first back-off step is 0.5-1.5 s, which
    would delay the next message by that much): the long poll itself was the wait."""

    def poll() -> None:
        try:
            poll_events()
        except EmptyPollResultsException:
            pass

    return poll


def _give_back(worker: EsmWorker, poller: SqsPoller, messages: list[dict]) -> None:
    """A batch that a long poll received after the mapping was disabled or deleted goes back to the queue at once
    (visibility 0) instead of being invoked: `Enabled=False` stops the mapping's work when it is answered, not a long
    poll later. (AWS documents that a disabled mapping may still finish batches it was processing; these were not
    being processed yet.) Their ApproximateReceiveCount has gone up by one, as for any receive. A message that cannot
    be put back (the queue was purged or deleted meanwhile) is logged; it reappears after its visibility timeout."""
    entries = [
        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for n, m in enumerate(messages)
    ]
    failed: list[str] = []
    for start in range(0, len(entries), 10):
        chunk = entries[start : start + 10]
        try:
            answer = poller.source_client.change_message_visibility_batch(QueueUrl=poller.queue_url, Entries=chunk)
            failed += [f"{f.get('Code')}" for f in answer.get("Failed", [])]
        except Exception as exc:  # noqa: BLE001 - the queue may be gone with the mapping: say so, never raise here
            failed += [type(exc).__name__] * len(chunk)
    LOG.info(
        "event-source mapping %s stopping: %d message(s) received by its last poll put back%s",
        worker.uuid,
        len(entries) - len(failed),
        f", {len(failed)} not ({', '.join(sorted(set(failed)))}: visible again after their timeout)" if failed else "",
    )


def _delete_without_a_loop(original_delete):
    """LocalStack removes a deleted mapping from its store only when the worker's poller loop exits; a disabled
    mapping has no loop any more, so its entry stayed listed as "Deleting" for ever (persisted, and a stack update or
    destroy waited on it). When no running loop is left to do it, the entry is removed here; a loop that is still
    running removes it itself (an enabled worker's exit path; a disabled worker's would only log an invalid state)."""

    def delete(self: EsmWorker) -> None:
        original_delete(self)
        thread = self._poller_thread
        if not self.enabled or thread is None or not thread.is_alive():
            self.delete_esm_in_store()
            LOG.info("event-source mapping %s deleted (no poller loop was running)", self.uuid)

    return delete


def install() -> None:
    """Patch EsmWorker once: SQS mappings get extra lanes and long polling when not batching; deleting a mapping
    whose poller loop has ended removes it (`_delete_without_a_loop`)."""
    if getattr(EsmWorker, _PATCHED, False):
        return
    EsmWorker.delete = _delete_without_a_loop(EsmWorker.delete)  # type: ignore[method-assign]
    original_loop = EsmWorker.poller_loop
    s = settings()

    def poller_loop(self: EsmWorker, *args, **kwargs):
        if not isinstance(self.poller, SqsPoller):
            return original_loop(self, *args, **kwargs)
        poller = self.poller
        plain_poll = poller.poll_events
        active = threading.Event()
        plain_handle = poller.handle_messages

        def handle_messages(messages):  # a batch arrived: wake the parked lanes, more may be waiting
            if self._shutdown_event.is_set():
                return _give_back(self, poller, messages)
            active.set()
            return plain_handle(messages)

        poller.handle_messages = handle_messages  # type: ignore[method-assign]
        if s.esm_long_poll_s and not poller.maximum_batching_window:
            # Without a batching window, wait on the queue instead of sleeping between short polls: a message is
            # picked up as soon as it arrives and an idle mapping costs next to no CPU. (Up to 20 s LocalStack's
            # override header is not sent, so SQS answers as soon as one message is there, as AWS's pollers do.)
            poller.maximum_batching_window = s.esm_long_poll_s
            poller.poll_events = _empty_is_fine(plain_poll)  # type: ignore[method-assign]
        n = lanes_for(self.esm_config, s.esm_default_concurrency, s.esm_max_lanes)
        extra = [
            threading.Thread(
                target=_lane, args=(self, i, plain_poll, active), name=f"esm-lane-{i}-{self.uuid}", daemon=True
            )
            for i in range(1, n)
        ]
        LOG.info(
            "event-source mapping %s: %d concurrent lane(s), long poll %ss",
            self.uuid,
            n,
            poller.maximum_batching_window,
        )
        original_close = poller.close

        def close() -> None:  # the original loop calls close() after its last poll: let the lanes finish first
            for t in extra:
                t.join(LANE_JOIN_TIMEOUT_S)
            original_close()

        poller.close = close  # type: ignore[method-assign]
        for t in extra:
            t.start()
        return original_loop(self, *args, **kwargs)

    EsmWorker.poller_loop = poller_loop  # type: ignore[method-assign]
    setattr(EsmWorker, _PATCHED, True)
    LOG.info(
        "SQS event-source mappings: MaximumConcurrency honoured (default %d, cap %d lanes)",
        s.esm_default_concurrency,
        s.esm_max_lanes,
    )
