"""The named chaos scenarios: traffic mix, faults, levers and mid-run actions of each (pure values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.chaos.errors import UnknownScenario
from harness.chaos.faults import FaultRule
from harness.chaos.proof import ALL, Need, Proof

# Actions taken from outside the pipeline while a scenario runs.
ACTIONS = ("kill-runtime", "restart-emulator")


@dataclass(frozen=True)
class Scenario:
    """One reversible fault scenario, run under load and judged against the invariant.

    images / poison   how many valid images, and which poison kinds (one upload each) are uploaded
    rules             S3 fault-proxy rules in force while the uploads are processed
    visibility_s      queue visibility timeout during the run (None = the chaos stack's, 10 s; the stack's function
                      timeout is 10 s, and a batch takes well under the shorter values used here)
    function_timeout_s  function timeout during the run (None = unchanged)
    max_receive_count the queue's maxReceiveCount during the run (None = unchanged)
    peer_consumer     add a second function consuming the same queue (as Lambda scales out pollers on AWS)
    burst_delay_s     queue DelaySeconds while uploading: the messages become visible together, in full batches
    action            an outside action mid-batch (ACTIONS)
    fix_then_redrive  after the first settle: clear the faults, redrive this run's DLQ messages, settle again
    expect            what every valid image should end as ('complete', 'dlq' or 'either'); poison -> 'dlq'
    expect_codes      DLQ error codes expected for valid images when expect == 'dlq'
    proof             the fault it must inject and the consequences it must observe (else FAILED: it tested nothing)
    """

    name: str
    title: str
    images: int = 12
    poison: tuple[str, ...] = ()
    rules: tuple[FaultRule, ...] = ()
    visibility_s: int | None = None
    function_timeout_s: int | None = None
    max_receive_count: int | None = None
    peer_consumer: bool = False
    burst_delay_s: int = 0
    action: str | None = None
    fix_then_redrive: bool = False
    expect: str = "complete"
    expect_codes: frozenset[str] = frozenset()
    settle_timeout_s: float = 120.0
    notes: tuple[str, ...] = field(default=())
    proof: Proof | None = None
    min_images: int = 2  # `scaled` keeps at least this many (visibility needs a batch long enough to overlap)

    def __post_init__(self) -> None:
        if self.action is not None and self.action not in ACTIONS:
            raise UnknownScenario(
                "INVALID_SCENARIO", f"Expected one of {'|'.join(ACTIONS)} for action but received {self.action!r}"
            )
        if self.expect not in ("complete", "dlq", "either"):
            raise UnknownScenario(
                "INVALID_SCENARIO", f"Expected complete|dlq|either for expect but received {self.expect!r}"
            )
        if self.proof is None:
            raise UnknownScenario(
                "INVALID_SCENARIO",
                f"Expected a proof (fault + consequence) for scenario {self.name!r} but received none",
            )
        if self.images < 0 or self.images + len(self.poison) == 0:
            raise UnknownScenario(
                "INVALID_SCENARIO", f"Expected at least one upload for scenario {self.name!r} but received none"
            )

    def scaled(self, factor: float) -> Scenario:
        """The same scenario with `factor` x the valid images (at least `min_images`): tests use small runs."""
        from dataclasses import replace

        return replace(self, images=max(self.min_images, round(self.images * factor)))


SOURCE = "uploads/"
THUMBS = "thumbnails/"

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "poison",
            "poison inputs (corrupt, bomb, non-image, empty) mixed into normal traffic",
            images=12,
            poison=("corrupt", "bomb", "not_image", "empty", "corrupt", "bomb"),
            proof=Proof(
                Need("poison_uploads", "poison files uploaded", ALL, "poison"),
                (
                    Need(
                        "poison_dlq_first_receive",
                        "poison dead-lettered with its code on the first receive",
                        ALL,
                        "poison",
                    ),
                ),
            ),
        ),
        Scenario(
            "s3-throttle",
            "S3 GetObject throttled: 503 SlowDown on 30% of source reads",
            images=16,
            rules=(FaultRule(method="GET", error="SlowDown", rate=0.3, key_prefix=SOURCE),),
            proof=Proof(
                Need("injected:SlowDown", "503 SlowDown injected by the proxy"),
                (Need("client_retries", "the S3 client retried"),),
            ),
        ),
        Scenario(
            "s3-500",
            "S3 PutObject 500 InternalError on 30% of thumbnail writes",
            images=16,
            rules=(FaultRule(method="PUT", error="InternalError", rate=0.3, key_prefix=THUMBS),),
            proof=Proof(
                Need("injected:InternalError", "500 InternalError injected by the proxy"),
                (Need("client_retries", "the S3 client retried"),),
            ),
        ),
        Scenario(
            "retryable",
            "every client attempt of the first GetObject per upload fails (500): SQS redelivers",
            images=8,
            rules=(FaultRule(method="GET", error="InternalError", calls_per_key=1, key_prefix=SOURCE),),
            visibility_s=6,
            proof=Proof(
                Need("injected:InternalError", "500 InternalError injected on every attempt of the first read"),
                (Need("redeliveries", "SQS redelivered each upload", ALL),),
            ),
        ),
        Scenario(
            "output-denied",
            "thumbnail writes denied (403 AccessDenied): retried, then dead-lettered with a code",
            images=8,
            rules=(FaultRule(method="PUT", error="AccessDenied", key_prefix=THUMBS),),
            visibility_s=6,
            # the handler treats a failed *output* write as retryable (STORAGE_ERROR): fixing the permission and
            # retrying helps, unlike a bad input; ACCESS_DENIED would be the code of a denied source read
            expect="dlq",
            expect_codes=frozenset({"STORAGE_ERROR"}),
            proof=Proof(
                Need("injected:AccessDenied", "403 AccessDenied injected on thumbnail writes"),
                (Need("dlq:STORAGE_ERROR", "uploads dead-lettered with STORAGE_ERROR", ALL),),
            ),
        ),
        Scenario(
            "fix-redrive",
            "writes denied -> DLQ; then the permission is fixed and the DLQ redriven: all complete",
            images=8,
            rules=(FaultRule(method="PUT", error="AccessDenied", key_prefix=THUMBS),),
            fix_then_redrive=True,
            visibility_s=6,
            proof=Proof(
                Need("injected:AccessDenied", "403 AccessDenied injected on thumbnail writes"),
                (
                    Need("redriven", "DLQ messages redriven after the fix", ALL),
                    Need("complete", "uploads complete after the redrive", ALL),
                ),
            ),
        ),
        Scenario(
            "crash",
            "the runtime process SIGKILLed mid-batch: the whole batch comes back after the visibility timeout",
            images=10,
            rules=(FaultRule(method="GET", delay_s=0.2, key_prefix=SOURCE),),
            action="kill-runtime",
            visibility_s=6,
            burst_delay_s=2,
            proof=Proof(
                Need("runtime_killed", "SIGKILL delivered to a live runtime pid"),
                (
                    Need("redeliveries", "the killed batch was redelivered"),
                    Need("duplicate_writes", "work finished before the kill was redone (the whole batch came back)"),
                ),
            ),
        ),
        Scenario(
            "timeout",
            "the function times out (first two source reads stall 7 s, timeout 5 s)",
            images=8,
            rules=(FaultRule(method="GET", delay_s=7.0, count=2, key_prefix=SOURCE),),
            function_timeout_s=5,
            visibility_s=6,
            proof=Proof(
                Need("injected:delay", "source reads stalled past the function timeout"),
                (
                    Need("sandbox_timedout", "Sandbox.Timedout ('Task timed out') in the function's logs"),
                    Need("redeliveries", "the timed-out batch was redelivered"),
                ),
            ),
        ),
        # Every source read takes 8 s, the function timeout is 40 s (a batch finishes: no timeout, no runaway of
        # receives), the visibility timeout 2 s: a message comes back 2 s after its receive and an idle consumer (the
        # warm peer, enabled once the first holds the batch, or an idle lane) reads it again while the first read is
        # still unanswered. The first completion deletes the message (any receipt handle does); maxReceiveCount is
        # raised so that the repeated receives of a slow batch never dead-letter a message that is being thumbnailed.
        Scenario(
            "visibility",
            "visibility timeout (2 s) shorter than processing (8 s per read) with two consumers",
            images=2,
            rules=(FaultRule(method="GET", delay_s=8.0, key_prefix=SOURCE),),
            visibility_s=2,
            function_timeout_s=40,
            max_receive_count=100,
            peer_consumer=True,
            settle_timeout_s=150.0,
            min_images=2,
            proof=Proof(
                Need("injected:delay", "processing slowed past the visibility timeout"),
                (Need("overlapping_deliveries", "a second receive of a message while the first was in flight"),),
            ),
        ),
        Scenario(
            "restart",
            "the emulator restarted mid-run: its state is persisted (the plugin), uploads before/during/after survive",
            images=12,
            rules=(FaultRule(method="GET", delay_s=0.3, key_prefix=SOURCE),),
            action="restart-emulator",
            expect="complete",
            settle_timeout_s=180.0,
            proof=Proof(
                Need("emulator_restarted", "the emulator process changed pid"),
                (
                    Need("stack_restored", "the stack and its data survived the restart"),
                    Need("uploads_after_restart", "uploads made during and after the restart"),
                ),
            ),
        ),
    )
}

# `all` runs them in this order: the destructive restart last.
ORDER = (
    "poison",
    "s3-throttle",
    "s3-500",
    "retryable",
    "output-denied",
    "fix-redrive",
    "crash",
    "timeout",
    "visibility",
    "restart",
)


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UnknownScenario(
            "UNKNOWN_SCENARIO", f"Expected one of {'|'.join(ORDER)} for scenario but received {name!r}"
        ) from None
