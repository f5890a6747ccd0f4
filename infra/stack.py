"""The pipeline stack defined once: profiles of knobs -> frozen resource specs that deploy/ and the CDK app render."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from common.errors import expected
from infra.errors import InfraError, InfraErrorCode
from notifier.config import NotifierSettings
from thumbnailer.config import Settings

RUNTIME = "python3.13"
HANDLER = "thumbnailer.app.lambda_handler"
NOTIFIER_HANDLER = "notifier.app.lambda_handler"
ARCHITECTURES = ("arm64", "x86_64")
TOPOLOGIES = ("direct", "notifier")
# which code the processing function runs: ours (handlers/thumbnailer) or the seed replica (handlers/seed, Node.js,
# zip built by `make package-seed`, see infra/seed_artifact.py)
FUNCTION_IMPLS = ("thumbnailer", "seed")
SEED_RUNTIME = "nodejs20.x"
SEED_HANDLER = "index.handler"
# "venv": on the emulator the function runs its handler code with the project venv as its layer (the code-only zip);
# "artifact": it runs the zip `make package` builds (infra/artifact) for its architecture, on an interpreter of that
# architecture (the executor plugin reads CODE_MODE_ENV, see harness/executor/local_executor/artifact.py)
CODE_MODES = ("venv", "artifact")
CODE_MODE_ENV = "HARNESS_CODE_MODE"
OVERRIDE_ALIASES = {"arch": "architecture"}
EMULATOR_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
OBJECT_CREATED = "s3:ObjectCreated:*"
TAG_KEY = "thumbnail-pipeline:stack"

_STACK_NAME = re.compile(r"^[a-z][a-z0-9-]{0,29}[a-z0-9]$")
_QUALIFIER = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


def _is_token(text: str) -> bool:
    """True for CDK tokens (unresolved values such as the account id of an environment-agnostic stack)."""
    return "${Token[" in text


@dataclass(frozen=True)
class StackConfig:
    """The knobs of a stack; a profile is one StackConfig. Units are in the names (seconds, MB, days)."""

    function_timeout_s: int = 30
    memory_mb: int = 1536
    architecture: str = "arm64"
    batch_size: int = 10
    batching_window_s: int = 1
    maximum_concurrency: int = 2
    report_batch_item_failures: bool = True
    # AWS guidance: at least 6 x the function timeout + the batching window (30 s -> 181 s)
    visibility_timeout_s: int = 190
    queue_retention_s: int = 4 * 24 * 3600
    dlq_retention_s: int = 10 * 24 * 3600
    max_receive_count: int = 3
    single_bucket: bool = False
    input_prefix: str = "uploads/"
    output_prefix: str = "thumbnails/"
    log_retention_days: int = 14
    # "direct": S3 -> SQS notification; "notifier": S3 -> notifier function -> SQS (adds size, type, etag, version)
    topology: str = "direct"
    function_impl: str = "thumbnailer"  # one of FUNCTION_IMPLS
    code: str = "venv"  # one of CODE_MODES
    notifier_timeout_s: int = 10
    notifier_memory_mb: int = 256
    # handler settings carried into the function environment (thumbnailer.config.Settings)
    backend: str = "pillow"
    sizes: str = "large:1024x1024,small:256x256"
    max_pixels: int = Settings().max_pixels
    max_input_bytes: int = Settings().max_input_bytes

    def __post_init__(self) -> None:
        checks: tuple[tuple[str, int, int], ...] = (
            ("function_timeout_s", 1, 900),
            ("memory_mb", 128, 10240),
            ("batch_size", 1, 10000),
            ("batching_window_s", 0, 300),
            ("maximum_concurrency", 2, 1000),
            ("visibility_timeout_s", 0, 43200),
            ("queue_retention_s", 60, 1209600),
            ("dlq_retention_s", 60, 1209600),
            ("max_receive_count", 1, 1000),
            ("log_retention_days", 1, 3653),
            ("notifier_timeout_s", 1, 900),
            ("notifier_memory_mb", 128, 10240),
            ("max_pixels", 1, 2**40),
            ("max_input_bytes", 1, 2**40),
        )
        for name, lo, hi in checks:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise InfraError(InfraErrorCode.INVALID_STACK, expected(f"an integer {lo}..{hi}", name, value))
        if self.topology not in TOPOLOGIES:
            raise InfraError(
                InfraErrorCode.INVALID_STACK, expected(f"one of {'|'.join(TOPOLOGIES)}", "topology", self.topology)
            )
        if self.function_impl not in FUNCTION_IMPLS:
            raise InfraError(
                InfraErrorCode.INVALID_STACK,
                expected(f"one of {'|'.join(FUNCTION_IMPLS)}", "function_impl", self.function_impl),
            )
        if self.code not in CODE_MODES:
            raise InfraError(
                InfraErrorCode.INVALID_STACK, expected(f"one of {'|'.join(CODE_MODES)}", "code", self.code)
            )
        if self.architecture not in ARCHITECTURES:
            raise InfraError(
                InfraErrorCode.INVALID_STACK,
                expected(f"one of {'|'.join(ARCHITECTURES)}", "architecture", self.architecture),
            )
        for name in ("report_batch_item_failures", "single_bucket"):
            if not isinstance(getattr(self, name), bool):
                raise InfraError(InfraErrorCode.INVALID_STACK, expected("a boolean", name, getattr(self, name)))


PROFILES: dict[str, StackConfig] = {
    "default": StackConfig(),
    # The seed project's settings, mistakes included: visibility == timeout, 128 MB, one bucket, DLQ kept 4 days
    # (the SQS default; its own test expected 10 days), x86_64.
    "seed": StackConfig(
        function_timeout_s=60,
        memory_mb=128,
        architecture="x86_64",
        batching_window_s=0,
        visibility_timeout_s=60,
        dlq_retention_s=4 * 24 * 3600,
        single_bucket=True,
        # the seed's own function (a replica, handlers/seed) and mapping: batch 10, no ReportBatchItemFailures
        function_impl="seed",
        report_batch_item_failures=False,
        # the replica's output folders thumbnails/<width>/ (widths 50, 150, 300 in handlers/seed/index.js; it takes no
        # settings, heights unused): recorded here so the deploy outputs tell observers the seed's layout
        sizes="50:50x50,150:150x150,300:300x300",
    ),
}


def profile_config(profile: str) -> StackConfig:
    try:
        return PROFILES[profile]
    except KeyError:
        raise InfraError(
            InfraErrorCode.UNKNOWN_PROFILE, expected(f"one of {'|'.join(PROFILES)}", "profile", profile)
        ) from None


def apply_overrides(config: StackConfig, overrides: Mapping[str, str | int | bool]) -> StackConfig:
    """Replace knobs by name; string values (from a CLI `--set key=value`) are converted to the field's type."""
    by_name = {f.name: f for f in fields(StackConfig)}
    changes: dict[str, Any] = {}
    for key, raw in overrides.items():
        key = OVERRIDE_ALIASES.get(key, key)
        f = by_name.get(key)
        if f is None:
            raise InfraError(
                InfraErrorCode.INVALID_OVERRIDE,
                expected(f"one of {', '.join(sorted(by_name))}", "an override name", key),
            )
        default = getattr(StackConfig(), key)
        if isinstance(raw, str) and isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise InfraError(InfraErrorCode.INVALID_OVERRIDE, expected("true|false", key, raw))
            changes[key] = raw.lower() in ("true", "1", "yes")
        elif isinstance(raw, str) and isinstance(default, int):
            try:
                changes[key] = int(raw)
            except ValueError:
                raise InfraError(InfraErrorCode.INVALID_OVERRIDE, expected("an integer", key, raw)) from None
        else:
            changes[key] = raw
    return dataclasses.replace(config, **changes)


# ---- resource specs ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BucketSpec:
    logical_id: str
    name: str
    versioned: bool


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    name: str
    visibility_timeout_s: int
    retention_s: int
    dead_letter_queue: str | None = None  # name of the DLQ (main queue only)
    max_receive_count: int | None = None


@dataclass(frozen=True)
class NotificationSpec:
    """Input bucket -> main queue (or the notifier function) for ObjectCreated under `prefix`.

    The prefix filter is also the recursion guard in single-bucket mode.
    """

    id: str
    bucket: str
    queue: str
    prefix: str
    events: tuple[str, ...] = (OBJECT_CREATED,)
    function: str | None = None  # notifier topology: the bucket invokes this function instead of sending to SQS


@dataclass(frozen=True)
class FunctionSpec:
    """The thumbnailer function (the processor behind the event-source mapping)."""

    logical_id: str
    name: str
    handler: str
    runtime: str
    architecture: str
    timeout_s: int
    memory_mb: int
    role_name: str
    log_group: str
    log_retention_days: int
    settings: Settings  # dlq_url is filled in at deploy time (the URL is only known once the queue exists)
    code_mode: str = "venv"
    impl: str = "thumbnailer"  # one of FUNCTION_IMPLS

    def environment(self, dlq_url: str) -> dict[str, str]:
        """The function environment: the handler's own Settings(...).to_env() with the DLQ URL (and the code mode
        when it is not the default, for the emulator's executor). The seed replica takes no settings."""
        if self.impl == "seed":
            return {}
        return _with_code_mode(dataclasses.replace(self.settings, dlq_url=dlq_url).to_env(), self.code_mode)


def _with_code_mode(env: dict[str, str], code_mode: str) -> dict[str, str]:
    return {**env, CODE_MODE_ENV: code_mode} if code_mode != "venv" else env


@dataclass(frozen=True)
class NotifierSpec:
    """The optional notifier function: S3 event -> one SQS message with the object's metadata."""

    logical_id: str
    name: str
    handler: str
    runtime: str
    architecture: str
    timeout_s: int
    memory_mb: int
    role_name: str
    log_group: str
    log_retention_days: int
    code_mode: str = "venv"

    def environment(self, queue_url: str) -> dict[str, str]:
        """The notifier's own NotifierSettings(...).to_env() with the main queue's URL (and the code mode)."""
        if queue_url.startswith(("http://", "https://")):
            return _with_code_mode(NotifierSettings(queue_url=queue_url).to_env(), self.code_mode)
        # an unresolved CDK token (the URL is known at deploy time)
        return _with_code_mode({"NOTIFIER_QUEUE_URL": queue_url}, self.code_mode)


@dataclass(frozen=True)
class EventSourceSpec:
    queue: str
    function: str
    batch_size: int
    batching_window_s: int
    function_response_types: tuple[str, ...]
    maximum_concurrency: int
    enabled: bool = True


@dataclass(frozen=True)
class PolicyStatement:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True)
class Stack:
    """Every resource of one pipeline stack, with names derived from the stack name (stacks can coexist)."""

    name: str
    profile: str
    config: StackConfig
    account: str
    region: str
    partition: str
    input_bucket: BucketSpec
    output_bucket: BucketSpec | None  # None: single-bucket mode (thumbnails under output_prefix of the input)
    queue: QueueSpec
    dlq: QueueSpec
    notification: NotificationSpec
    function: FunctionSpec
    mapping: EventSourceSpec
    notifier: NotifierSpec | None = None  # set in the notifier topology
    tags: tuple[tuple[str, str], ...] = field(default=())

    # ---- derived names and ARNs ----
    @property
    def output_bucket_name(self) -> str:
        return self.output_bucket.name if self.output_bucket else self.input_bucket.name

    @property
    def buckets(self) -> tuple[BucketSpec, ...]:
        return (self.input_bucket,) + ((self.output_bucket,) if self.output_bucket else ())

    def bucket_arn(self, bucket: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}"

    def queue_arn(self, queue: str) -> str:
        return f"arn:{self.partition}:sqs:{self.region}:{self.account}:{queue}"

    def log_group_arn(self, log_group: str | None = None) -> str:
        group = log_group or self.function.log_group
        return f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:{group}"

    def function_arn(self, name: str | None = None) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{name or self.function.name}"

    # ---- policies (one source for deploy/ and the CDK app) ----
    def role_statements(self) -> tuple[PolicyStatement, ...]:
        """Least privilege: read the input (no delete), write the output, consume the queue, send to the DLQ, log."""
        cfg = self.config
        return (
            PolicyStatement(
                "ReadInput",
                ("s3:GetObject", "s3:GetObjectVersion"),
                (f"{self.bucket_arn(self.input_bucket.name)}/{cfg.input_prefix}*",),
            ),
            PolicyStatement(
                "WriteOutput", ("s3:PutObject",), (f"{self.bucket_arn(self.output_bucket_name)}/{cfg.output_prefix}*",)
            ),
            PolicyStatement(
                "ConsumeQueue",
                ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")
                # the seed replica finds its queue's URL from the record's ARN
                + (("sqs:GetQueueUrl",) if self.function.impl == "seed" else ()),
                (self.queue_arn(self.queue.name),),
            ),
            PolicyStatement("SendPermanentFailuresToDlq", ("sqs:SendMessage",), (self.queue_arn(self.dlq.name),)),
            PolicyStatement("WriteLogs", ("logs:CreateLogStream", "logs:PutLogEvents"), (f"{self.log_group_arn()}:*",)),
        )

    def notifier_statements(self) -> tuple[PolicyStatement, ...]:
        """The notifier reads object metadata (HEAD needs s3:GetObject), sends to the main queue, logs."""
        if self.notifier is None:
            return ()
        return (
            PolicyStatement(
                "HeadInput",
                ("s3:GetObject", "s3:GetObjectVersion"),
                (f"{self.bucket_arn(self.input_bucket.name)}/{self.config.input_prefix}*",),
            ),
            PolicyStatement("SendJobs", ("sqs:SendMessage",), (self.queue_arn(self.queue.name),)),
            PolicyStatement(
                "WriteLogs",
                ("logs:CreateLogStream", "logs:PutLogEvents"),
                (f"{self.log_group_arn(self.notifier.log_group)}:*",),
            ),
        )

    def all_statements(self) -> tuple[tuple[str, tuple[PolicyStatement, ...]], ...]:
        """(role name, statements) of every role in the stack (what the IAM lint rules check)."""
        roles: tuple[tuple[str, tuple[PolicyStatement, ...]], ...] = (
            (self.function.role_name, self.role_statements()),
        )
        if self.notifier is not None:
            roles += ((self.notifier.role_name, self.notifier_statements()),)
        return roles

    @staticmethod
    def policy_document(statements: tuple[PolicyStatement, ...]) -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": s.sid, "Effect": "Allow", "Action": list(s.actions), "Resource": list(s.resources)}
                for s in statements
            ],
        }

    def role_policy(self) -> dict[str, Any]:
        return self.policy_document(self.role_statements())

    def notifier_policy(self) -> dict[str, Any]:
        return self.policy_document(self.notifier_statements())

    @staticmethod
    def trust_policy() -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }

    def queue_policy(self) -> dict[str, Any] | None:
        """Only the input bucket of this stack (in this account) may send to the main queue (direct topology;
        with the notifier, its role's own policy grants the send and the queue needs no resource policy)."""
        if self.notifier is not None:
            return None
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowInputBucketNotifications",
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": self.queue_arn(self.queue.name),
                    "Condition": {
                        "ArnEquals": {"aws:SourceArn": self.bucket_arn(self.input_bucket.name)},
                        "StringEquals": {"aws:SourceAccount": self.account},
                    },
                }
            ],
        }


def build_stack(
    stack_name: str = "thumbs",
    profile: str = "default",
    *,
    overrides: Mapping[str, str | int | bool] | None = None,
    account: str = EMULATOR_ACCOUNT,
    region: str = DEFAULT_REGION,
    partition: str = "aws",
    qualifier: str = "",
) -> Stack:
    """Resolve a profile (+ overrides) into resource specs named after `stack_name`.

    `qualifier` makes bucket names globally unique on real AWS (deploy/ uses "<account>-<region>" there); the
    emulator needs none. account/region/partition may be CDK tokens (an environment-agnostic CDK stack).
    """
    if not isinstance(stack_name, str) or not _STACK_NAME.match(stack_name):
        raise InfraError(
            InfraErrorCode.INVALID_STACK,
            expected("2-31 lowercase letters, digits or '-' starting with a letter", "stack name", stack_name),
        )
    if qualifier and not _is_token(qualifier) and not _QUALIFIER.match(qualifier):
        raise InfraError(
            InfraErrorCode.INVALID_STACK,
            expected("lowercase letters, digits or '-' (at most 31)", "bucket qualifier", qualifier),
        )
    config = apply_overrides(profile_config(profile), overrides or {})
    middle = f"-{qualifier}" if qualifier else ""
    input_bucket = BucketSpec("InputBucket", f"{stack_name}{middle}-input", versioned=True)
    output_bucket = (
        None if config.single_bucket else BucketSpec("OutputBucket", f"{stack_name}{middle}-output", versioned=False)
    )
    dlq = QueueSpec("DeadLetterQueue", f"{stack_name}-dlq", visibility_timeout_s=30, retention_s=config.dlq_retention_s)
    queue = QueueSpec(
        "JobQueue",
        f"{stack_name}-jobs",
        visibility_timeout_s=config.visibility_timeout_s,
        retention_s=config.queue_retention_s,
        dead_letter_queue=dlq.name,
        max_receive_count=config.max_receive_count,
    )
    function_name = f"{stack_name}-thumbnailer"
    try:
        settings = Settings(
            output_bucket=output_bucket.name if output_bucket else "",
            input_prefix=config.input_prefix,
            output_prefix=config.output_prefix,
            backend=config.backend,
            sizes=config.sizes,
            max_pixels=config.max_pixels,
            max_input_bytes=config.max_input_bytes,
            max_receive_count=config.max_receive_count,
        )
    except Exception as exc:  # the handler's ConfigError: same message, our code
        raise InfraError(InfraErrorCode.INVALID_STACK, str(getattr(exc, "message", exc))) from exc
    function = FunctionSpec(
        logical_id="Thumbnailer",
        name=function_name,
        handler=SEED_HANDLER if config.function_impl == "seed" else HANDLER,
        runtime=SEED_RUNTIME if config.function_impl == "seed" else RUNTIME,
        architecture=config.architecture,
        timeout_s=config.function_timeout_s,
        memory_mb=config.memory_mb,
        role_name=f"{stack_name}-thumbnailer-{region}" if not _is_token(region) else f"{stack_name}-thumbnailer",
        log_group=f"/aws/lambda/{function_name}",
        log_retention_days=config.log_retention_days,
        settings=settings,
        code_mode=config.code,
        impl=config.function_impl,
    )
    notifier = None
    if config.topology == "notifier":
        notifier_name = f"{stack_name}-notifier"
        notifier = NotifierSpec(
            logical_id="Notifier",
            name=notifier_name,
            handler=NOTIFIER_HANDLER,
            runtime=RUNTIME,
            architecture=config.architecture,
            timeout_s=config.notifier_timeout_s,
            memory_mb=config.notifier_memory_mb,
            role_name=f"{stack_name}-notifier-{region}" if not _is_token(region) else f"{stack_name}-notifier",
            log_group=f"/aws/lambda/{notifier_name}",
            log_retention_days=config.log_retention_days,
            code_mode=config.code,
        )
    return Stack(
        name=stack_name,
        profile=profile,
        config=config,
        account=account,
        region=region,
        partition=partition,
        input_bucket=input_bucket,
        output_bucket=output_bucket,
        queue=queue,
        dlq=dlq,
        notification=NotificationSpec(
            id=f"{stack_name}-uploads-to-{'notifier' if notifier else 'jobs'}",
            bucket=input_bucket.name,
            queue=queue.name,
            prefix=config.input_prefix,
            function=notifier.name if notifier else None,
        ),
        function=function,
        mapping=EventSourceSpec(
            queue=queue.name,
            function=function_name,
            batch_size=config.batch_size,
            batching_window_s=config.batching_window_s,
            function_response_types=("ReportBatchItemFailures",) if config.report_batch_item_failures else (),
            maximum_concurrency=config.maximum_concurrency,
        ),
        notifier=notifier,
        tags=((TAG_KEY, stack_name),),
    )
