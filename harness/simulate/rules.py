"""AWS's documented scaling, throttling, queueing and pricing rules the simulator applies, each with its source."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from infra.pricing import FULL_VCPU_MB, PRICE_TABLE_DATE, PRICES

# When the sources below were read (through the docs search of this project, not live pages): re-check before quoting.
RULES_CHECKED = "2026-12-01"
SQS_SCALING = "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"
SCALING_CONFIG = "https://docs.aws.amazon.com/lambda/latest/dg/API_ScalingConfig.html"
LAMBDA_SCALING = "https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html"
RESERVED = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html"
SQS_KC = "https://repost.aws/knowledge-center/lambda-sqs-scaling"
WITH_SQS = "https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html"
SQS_DLQ = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html"
SQS_ATTRS = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html"
S3_PERF = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html"
LAMBDA_PRICING = "https://aws.amazon.com/lambda/pricing/"
LAMBDA_MEMORY = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html"
LAMBDA_TIMEOUT = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html"

# Lambda on-demand prices (us-east-1, first tier, free tier ignored) and the CPU share: the dated table of
# infra.pricing, the one the benchmarks' cost model uses too.
USD_PER_GB_S = {arch: price.usd_per_gb_s for arch, price in PRICES.items()}
USD_PER_MILLION_REQUESTS = {arch: price.usd_per_million_requests for arch, price in PRICES.items()}


@dataclass(frozen=True)
class Rule:
    """One documented rule: its figure, what the simulator does with it, where it is written, the test of its effect."""

    key: str
    figure: str
    effect: str
    source: str
    test: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


# Figures the engine uses (the knobs of harness.simulate.knobs default to these; `--set` changes them).
ESM_INITIAL_BATCHES = 5
ESM_SCALE_UP_PER_MIN = 300
ESM_MAX_BATCHES = 1000
MAX_CONCURRENCY_RANGE = (2, 1000)
ACCOUNT_CONCURRENCY = 1000
FUNCTION_SCALE_PER_10S = 1000
S3_PUT_PER_PREFIX_S = 3500
S3_GET_PER_PREFIX_S = 5500
VISIBILITY_RANGE_S = (0, 43200)
RETENTION_RANGE_S = (60, 1209600)
RETENTION_DEFAULT_S = 345600
FUNCTION_TIMEOUT_MAX_S = 900

RULES: tuple[Rule, ...] = (
    Rule(
        "esm_start",
        f"{ESM_INITIAL_BATCHES} concurrent batches when messages appear",
        "an SQS mapping starts with min(5, MaximumConcurrency) pollers; back to 5 after a minute without backlog",
        SQS_SCALING,
        "test_esm_starts_with_five_batches",
    ),
    Rule(
        "esm_scale_up",
        f"+{ESM_SCALE_UP_PER_MIN} concurrent batches per minute while messages remain",
        "pollers grow by 5 per second of backlog (not while invocations are throttled)",
        SQS_SCALING,
        "test_esm_scales_up_by_300_per_minute",
    ),
    Rule(
        "esm_max",
        f"at most {ESM_MAX_BATCHES} concurrent batches per mapping (standard queue); a newer translation "
        "of the same page says 1,250 invocations: `--set esm_max_batches=1250`",
        "caps the pollers of one mapping",
        SQS_SCALING,
        "test_caps_bind_concurrency",
    ),
    Rule(
        "maximum_concurrency",
        f"ScalingConfig.MaximumConcurrency {MAX_CONCURRENCY_RANGE[0]}-{MAX_CONCURRENCY_RANGE[1]}",
        "caps the mapping's concurrent invocations; never causes throttles itself",
        SCALING_CONFIG,
        "test_caps_bind_concurrency",
    ),
    Rule(
        "account_concurrency",
        f"{ACCOUNT_CONCURRENCY} concurrent executions per account and Region by default",
        "invocations beyond the account's unreserved concurrency are throttled",
        SQS_SCALING,
        "test_reserved_concurrency_below_pollers_throttles",
    ),
    Rule(
        "reserved_concurrency",
        f"reserved concurrency caps the function; the mapping does not account for it ({RESERVED})",
        "invocations beyond it are throttled (429): the batch becomes visible again after the visibility timeout "
        "and its receive count rises (maxReceiveCount throttles = DLQ)",
        SQS_KC,
        "test_reserved_concurrency_below_pollers_throttles",
    ),
    Rule(
        "function_scaling",
        f"{FUNCTION_SCALE_PER_10S} new execution environments per function every 10 s "
        "(refilled continuously, unused rate not banked)",
        "a token bucket of 1,000 environments refilled at 100/s; no token = throttled invocation",
        LAMBDA_SCALING,
        "test_function_scaling_rate_limits_new_environments",
    ),
    Rule(
        "visibility",
        f"visibility timeout {VISIBILITY_RANGE_S[0]}-{VISIBILITY_RANGE_S[1]} s; a message that is "
        "not deleted becomes visible again when it expires (failed, throttled or still running)",
        "failed or throttled records come back after it; a batch running longer than it is delivered twice",
        WITH_SQS,
        "test_visibility_shorter_than_batch_duplicates",
    ),
    Rule(
        "max_receive",
        "after maxReceiveCount receives without a delete SQS moves the message to the DLQ",
        "redriven when it would be received once more; the handler dead-letters a retryable failure on the "
        "last allowed receive itself",
        SQS_DLQ,
        "test_retryable_failures_end_in_dlq_after_max_receive",
    ),
    Rule(
        "retention",
        f"MessageRetentionPeriod {RETENTION_RANGE_S[0]} s-14 days (default 4 days)",
        "a message older than the retention is deleted unprocessed (counted as expired: lost)",
        SQS_ATTRS,
        "test_retention_expires_old_messages",
    ),
    Rule(
        "s3_rates",
        f"{S3_PUT_PER_PREFIX_S:,} PUT/COPY/POST/DELETE and {S3_GET_PER_PREFIX_S:,} GET/HEAD per second "
        "per partitioned prefix",
        "a record whose GET or thumbnail PUT exceeds the second's budget fails with 503 "
        "SlowDown (retryable: redelivered after the visibility timeout)",
        S3_PERF,
        "test_s3_prefix_rate_throttles",
    ),
    Rule(
        "timeout",
        f"function timeout 1-{FUNCTION_TIMEOUT_MAX_S} s",
        "an invocation past it fails as a whole: every record of the batch comes back after the visibility timeout",
        LAMBDA_TIMEOUT,
        "test_function_timeout_fails_the_batch",
    ),
    Rule(
        "cpu_share",
        f"CPU proportional to memory, one vCPU at {FULL_VCPU_MB} MB",
        "record CPU time is stretched by 1769/memory below 1,769 MB",
        LAMBDA_MEMORY,
        "test_memory_stretches_cpu_time",
    ),
    Rule(
        "pricing",
        f"arm64 ${USD_PER_GB_S['arm64']}/GB-s, x86_64 ${USD_PER_GB_S['x86_64']}/GB-s, "
        f"${USD_PER_MILLION_REQUESTS['arm64']:.2f} per million requests (us-east-1, table of {PRICE_TABLE_DATE})",
        "billed duration (1 ms granularity) x memory + one request per invocation",
        LAMBDA_PRICING,
        "test_cost_per_million_matches_price_table",
    ),
)


def rules_markdown() -> list[str]:
    """The table every report prints."""
    lines = [f"| rule | figure | what the simulator does | source (read {RULES_CHECKED}) |", "|---|---|---|---|"]
    for r in RULES:
        lines.append(f"| {r.key} | {r.figure} | {r.effect} | {r.source} |")
    return lines
