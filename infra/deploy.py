"""Apply a stack definition with boto3 to any endpoint (emulator or AWS): idempotent deploy, change report, destroy."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from common.paths import ROOT
from common.credentials import TEST_ACCESS_KEY, TEST_SECRET_KEY
from common.waiting import WaitTimeout, wait_until
from infra.errors import InfraError, InfraErrorCode
from infra.lint import Finding, Severity, errors, lint
from infra.package import code_sha256, code_zip_bytes
from infra.stack import FunctionSpec, NotifierSpec, Stack, build_stack

if TYPE_CHECKING:
    from harness.settings import HarnessSettings

# Lambda accepts at most 50 MB of zip in the request itself (larger code goes through S3: use the CDK app).
MAX_DIRECT_UPLOAD_BYTES = 50 * 1024 * 1024
DEFAULT_ARTIFACT = ROOT / ".package" / "lambda-arm64.zip"
FUNCTION_READY_TIMEOUT_S = 180.0
ROLE_PROPAGATION_TIMEOUT_S = 60.0


# ---- where to deploy -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """An endpoint to deploy to: the emulator (endpoint set, test credentials) or AWS (endpoint None, a profile)."""

    region: str
    endpoint: str | None = None
    aws_profile: str | None = None

    @property
    def is_emulator(self) -> bool:
        return self.endpoint is not None

    @classmethod
    def emulator(cls, settings: "HarnessSettings") -> "Target":
        return cls(region=settings.region, endpoint=settings.endpoint)


class Clients:
    """boto3 clients for one target, created on first use."""

    def __init__(self, target: Target) -> None:
        self.target = target
        if target.is_emulator:
            self._session = boto3.Session(aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY,
                                          region_name=target.region)
        else:
            self._session = boto3.Session(profile_name=target.aws_profile, region_name=target.region)
        self._config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        self._cache: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = self._session.client(service, endpoint_url=self.target.endpoint,
                                                        config=self._config)
        return self._cache[service]

    def account(self) -> str:
        return str(self("sts").get_caller_identity()["Account"])


def stack_for_target(clients: Clients, stack_name: str, profile: str,
                     overrides: dict[str, str] | None = None) -> Stack:
    """The definition with this target's account/region; bucket names qualified with account+region on AWS."""
    target = clients.target
    account = clients.account()
    qualifier = "" if target.is_emulator else f"{account}-{target.region}"
    return build_stack(stack_name, profile, overrides=overrides, account=account, region=target.region,
                       qualifier=qualifier)


# ---- reports -------------------------------------------------------------------------------------------------------
@dataclass
class DeployReport:
    """What a deploy changed, the outputs it wrote and the lint findings it printed."""

    stack_name: str
    profile: str
    endpoint: str
    changes: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    outputs_path: Path | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def summary(self) -> list[str]:
        lines = [f"stack {self.stack_name} (profile {self.profile}) at {self.endpoint}: "
                 + (f"{len(self.changes)} change(s)" if self.changes else "no changes")]
        lines += [f"  {c}" for c in self.changes]
        lines += [f"  {f}" for f in self.findings if f.severity == Severity.WARNING]
        if self.outputs:
            lines.append(f"  input  s3://{self.outputs['input_bucket']}/{self.outputs['input_prefix']}")
            lines.append(f"  output s3://{self.outputs['output_bucket']}/{self.outputs['output_prefix']}")
            lines.append(f"  queue  {self.outputs['queue_url']}  dlq {self.outputs['dlq_url']}")
            lines.append(f"  function {self.outputs['function_name']}")
        if self.outputs_path:
            lines.append(f"  outputs written to {self.outputs_path}")
        return lines


@dataclass
class DestroyReport:
    stack_name: str
    deleted: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        head = f"stack {self.stack_name}: " + (f"deleted {len(self.deleted)} resource(s)" if self.deleted
                                                 else "nothing to delete")
        return [head] + [f"  {d}" for d in self.deleted]


# ---- helpers -------------------------------------------------------------------------------------------------------
def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _aws(what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call boto3; turn a ClientError into an InfraError that names the operation and the resource."""
    try:
        return call(*args, **kwargs)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise InfraError(InfraErrorCode.DEPLOY_FAILED,
                         f"{what}: {err.get('Code', '?')}: {err.get('Message', exc)}") from exc


def normalize_policy(value: Any) -> Any:
    """A policy document as a dict with list-valued Action/Resource (IAM and SQS return str or dict, str or list)."""
    if isinstance(value, str):
        from urllib.parse import unquote

        value = json.loads(value if value.lstrip().startswith("{") else unquote(value))
    statements = value.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    norm = []
    for st in statements:
        st = dict(st)
        for key in ("Action", "Resource"):
            if isinstance(st.get(key), str):
                st[key] = [st[key]]
            if key in st:
                st[key] = sorted(st[key])
        norm.append(st)
    return {"Version": value.get("Version"), "Statement": norm}


def _diff(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (current.get(k), v) for k, v in desired.items() if current.get(k) != v}


def _describe_diff(diff: dict[str, tuple[Any, Any]]) -> str:
    parts = []
    for key, (old, new) in diff.items():
        if new is None:
            parts.append(f"{key} removed")
        elif isinstance(new, (dict, list)) or isinstance(old, (dict, list)) or len(str(new)) > 60:
            parts.append(f"{key} changed")
        else:
            parts.append(f"{key} {old} -> {new}")
    return ", ".join(parts)


def _create_with_retry(what: str, call: Callable[[], Any]) -> Any:
    """Create something that may briefly be refused: on AWS a new role or its policy takes seconds to propagate
    (InvalidParameterValueException about the role/permissions); on LocalStack a just-deleted mapping can still
    block its replacement (ResourceConflictException). Other errors fail at once."""
    result: list[Any] = []

    def attempt() -> bool:
        try:
            result.append(call())
            return True
        except ClientError as exc:
            message = str(exc).lower()
            if _code(exc) == "InvalidParameterValueException" and ("role" in message or "permission" in message):
                return False
            if _code(exc) == "ResourceConflictException":
                return False
            raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"{what}: {exc}") from exc

    try:
        wait_until(attempt, ROLE_PROPAGATION_TIMEOUT_S, interval=0.5, what=what,
                   ignore=(ClientError,))
    except WaitTimeout as exc:
        raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"{what}: still refused after {exc.timeout:.0f} s") from exc
    return result[-1]


# ---- the deployer --------------------------------------------------------------------------------------------------
class Deployer:
    """Applies one Stack to one target; every `ensure_*` creates or updates in place and records a change line."""

    def __init__(self, stack: Stack, clients: Clients, code: bytes) -> None:
        self.stack = stack
        self.c = clients
        self.code = code
        self.changes: list[str] = []
        self.tags = dict(stack.tags)

    # ---- queues ----
    def _queue_url(self, name: str) -> str | None:
        try:
            return str(self.c("sqs").get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError as exc:
            if _code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                return None
            raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"get queue url {name}: {exc}") from exc

    def ensure_queue(self, name: str, desired: dict[str, str]) -> tuple[str, str]:
        sqs = self.c("sqs")
        url = self._queue_url(name)
        if url is None:
            url = _aws(f"create queue {name}", sqs.create_queue, QueueName=name,
                       Attributes={k: v for k, v in desired.items() if v != ""}, tags=self.tags)["QueueUrl"]
            self.changes.append(f"created queue {name}")
        else:
            attrs = _aws(f"read queue {name}", sqs.get_queue_attributes, QueueUrl=url,
                         AttributeNames=["All"])["Attributes"]
            current = {k: self._norm_queue_attr(k, attrs.get(k)) for k in desired}
            wanted = {k: self._norm_queue_attr(k, v) for k, v in desired.items()}
            diff = _diff(current, wanted)
            if diff:
                _aws(f"update queue {name}", sqs.set_queue_attributes, QueueUrl=url,
                     Attributes={k: desired[k] for k in diff})
                self.changes.append(f"updated queue {name}: {_describe_diff(diff)}")
        arn = _aws(f"read queue {name}", sqs.get_queue_attributes, QueueUrl=url,
                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    @staticmethod
    def _norm_queue_attr(key: str, value: Any) -> Any:
        if value is None or value == "":
            return None
        if key == "Policy":
            return normalize_policy(value)
        if key == "RedrivePolicy":
            doc = json.loads(value) if isinstance(value, str) else dict(value)
            return {"deadLetterTargetArn": doc.get("deadLetterTargetArn"),
                    "maxReceiveCount": int(doc.get("maxReceiveCount", 0))}
        return str(value)

    # ---- buckets ----
    def ensure_bucket(self, name: str, versioned: bool) -> None:
        s3 = self.c("s3")
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise InfraError(InfraErrorCode.DEPLOY_FAILED,
                                 f"bucket {name} exists but is not usable from this account: {exc}") from exc
            kwargs: dict[str, Any] = {"Bucket": name}
            if self.c.target.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.c.target.region}
            _aws(f"create bucket {name}", s3.create_bucket, **kwargs)
            _aws(f"tag bucket {name}", s3.put_bucket_tagging, Bucket=name,
                 Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in self.tags.items()]})
            self.changes.append(f"created bucket {name}")
        block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                 "RestrictPublicBuckets": True}
        try:
            current_block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        except ClientError:
            current_block = {}
        if current_block != block:
            _aws(f"block public access {name}", s3.put_public_access_block, Bucket=name,
                 PublicAccessBlockConfiguration=block)
            self.changes.append(f"updated bucket {name}: public access blocked")
        status = _aws(f"read versioning {name}", s3.get_bucket_versioning, Bucket=name).get("Status")
        if versioned and status != "Enabled":
            _aws(f"enable versioning {name}", s3.put_bucket_versioning, Bucket=name,
                 VersioningConfiguration={"Status": "Enabled"})
            self.changes.append(f"updated bucket {name}: versioning enabled")
        elif not versioned and status == "Enabled":
            _aws(f"suspend versioning {name}", s3.put_bucket_versioning, Bucket=name,
                 VersioningConfiguration={"Status": "Suspended"})
            self.changes.append(f"updated bucket {name}: versioning suspended")

    def ensure_notification(self, queue_arn: str, function_arn: str | None) -> None:
        """ObjectCreated under the prefix -> the main queue (direct) or the notifier function (notifier)."""
        n = self.stack.notification
        s3 = self.c("s3")
        rules = {"Key": {"FilterRules": [{"Name": "prefix", "Value": n.prefix}]}}
        if n.function is not None:
            assert function_arn is not None
            wanted = {"LambdaFunctionConfigurations": [{"Id": n.id, "LambdaFunctionArn": function_arn,
                                                        "Events": list(n.events), "Filter": rules}]}
            target = n.function
        else:
            wanted = {"QueueConfigurations": [{"Id": n.id, "QueueArn": queue_arn, "Events": list(n.events),
                                               "Filter": rules}]}
            target = n.queue
        current = _aws(f"read notification {n.bucket}", s3.get_bucket_notification_configuration, Bucket=n.bucket)
        if _norm_notifications(current) == _norm_notifications(wanted):
            return
        _aws(f"configure notification {n.bucket}", s3.put_bucket_notification_configuration, Bucket=n.bucket,
             NotificationConfiguration=wanted)
        self.changes.append(f"configured notification {n.bucket} {n.prefix}* -> {target}")

    def ensure_invoke_permission(self, function_name: str) -> None:
        """Let only this stack's input bucket (in this account) invoke the notifier."""
        lam = self.c("lambda")
        sid = "s3-input-bucket"
        source_arn = self.stack.bucket_arn(self.stack.input_bucket.name)
        try:
            policy = json.loads(lam.get_policy(FunctionName=function_name)["Policy"])
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"read policy of {function_name}: {exc}") from exc
            policy = {"Statement": []}
        for st in policy.get("Statement", []):
            if st.get("Sid") == sid:
                cond = json.dumps(st.get("Condition", {}))
                if source_arn in cond and self.stack.account in cond:
                    return
                _aws(f"remove permission {sid}", lam.remove_permission, FunctionName=function_name, StatementId=sid)
        _aws(f"add permission {sid} to {function_name}", lam.add_permission, FunctionName=function_name,
             StatementId=sid, Action="lambda:InvokeFunction", Principal="s3.amazonaws.com", SourceArn=source_arn,
             SourceAccount=self.stack.account)
        self.changes.append(f"allowed {self.stack.input_bucket.name} to invoke {function_name}")

    # ---- IAM and logs ----
    def ensure_role(self, name: str, policy: dict[str, Any], description: str) -> str:
        iam = self.c("iam")
        trust = self.stack.trust_policy()
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"read role {name}: {exc}") from exc
            role = _aws(f"create role {name}", iam.create_role, RoleName=name,
                        AssumeRolePolicyDocument=json.dumps(trust), Description=description,
                        Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])["Role"]
            self.changes.append(f"created role {name}")
        else:
            if normalize_policy(role["AssumeRolePolicyDocument"]) != normalize_policy(trust):
                _aws(f"update trust policy {name}", iam.update_assume_role_policy, RoleName=name,
                     PolicyDocument=json.dumps(trust))
                self.changes.append(f"updated role {name}: trust policy")
        try:
            current = normalize_policy(iam.get_role_policy(RoleName=name, PolicyName="pipeline")["PolicyDocument"])
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"read role policy {name}: {exc}") from exc
            current = None
        if current != normalize_policy(policy):
            _aws(f"put role policy {name}", iam.put_role_policy, RoleName=name, PolicyName="pipeline",
                 PolicyDocument=json.dumps(policy))
            self.changes.append(f"{'updated' if current else 'attached'} policy pipeline on role {name}")
        return str(role["Arn"])

    def ensure_log_group(self, name: str, days: int) -> None:
        logs = self.c("logs")
        groups = _aws(f"read log group {name}", logs.describe_log_groups, logGroupNamePrefix=name)["logGroups"]
        group = next((g for g in groups if g["logGroupName"] == name), None)
        if group is None:
            _aws(f"create log group {name}", logs.create_log_group, logGroupName=name, tags=self.tags)
            self.changes.append(f"created log group {name}")
        if group is None or group.get("retentionInDays") != days:
            _aws(f"set retention {name}", logs.put_retention_policy, logGroupName=name, retentionInDays=days)
            if group is not None:
                self.changes.append(f"updated log group {name}: retention {group.get('retentionInDays')} -> {days}")

    # ---- function and mapping ----
    def _wait_function_ready(self, name: str) -> dict[str, Any]:
        lam = self.c("lambda")

        def ready() -> dict[str, Any] | None:
            cfg = lam.get_function_configuration(FunctionName=name)
            if cfg.get("State") == "Failed" or cfg.get("LastUpdateStatus") == "Failed":
                raise InfraError(InfraErrorCode.DEPLOY_FAILED,
                                 f"function {name} failed: {cfg.get('StateReason') or cfg.get('LastUpdateStatusReason')}")
            if cfg.get("State") == "Active" and cfg.get("LastUpdateStatus", "Successful") == "Successful":
                return dict(cfg)
            return None

        cfg: dict[str, Any] | None = wait_until(ready, FUNCTION_READY_TIMEOUT_S, interval=0.1,
                                                what=f"function {name} Active")
        assert cfg is not None  # wait_until returns only a truthy value
        return cfg

    def ensure_function(self, fn: FunctionSpec | NotifierSpec, role_arn: str, environment: dict[str, str]) -> str:
        lam = self.c("lambda")
        desired = {"Runtime": fn.runtime, "Role": role_arn, "Handler": fn.handler, "Timeout": fn.timeout_s,
                   "MemorySize": fn.memory_mb, "Environment": {"Variables": environment}}
        try:
            lam.get_function_configuration(FunctionName=fn.name)
            exists = True
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"read function {fn.name}: {exc}") from exc
            exists = False
        if not exists:
            _create_with_retry(f"create function {fn.name}", lambda: lam.create_function(
                FunctionName=fn.name, Code={"ZipFile": self.code}, Architectures=[fn.architecture],
                PackageType="Zip", Publish=False, Tags=self.tags, **desired))
            self.changes.append(f"created function {fn.name}")
            cfg = self._wait_function_ready(fn.name)
            return str(cfg["FunctionArn"])
        cfg = self._wait_function_ready(fn.name)
        current = {k: cfg.get(k) for k in desired}
        current["Environment"] = {"Variables": (cfg.get("Environment") or {}).get("Variables", {})}
        diff = _diff(current, desired)
        if diff:
            _aws(f"update function {fn.name}", lam.update_function_configuration, FunctionName=fn.name,
                 **{k: desired[k] for k in diff})
            self.changes.append(f"updated function {fn.name}: {_describe_diff(diff)}")
            cfg = self._wait_function_ready(fn.name)
        arch_now = (cfg.get("Architectures") or ["x86_64"])[0]
        if cfg.get("CodeSha256") != code_sha256(self.code) or arch_now != fn.architecture:
            _aws(f"update code {fn.name}", lam.update_function_code, FunctionName=fn.name, ZipFile=self.code,
                 Architectures=[fn.architecture])
            what = "code" if arch_now == fn.architecture else f"code, architecture {arch_now} -> {fn.architecture}"
            self.changes.append(f"updated function {fn.name}: {what}")
            cfg = self._wait_function_ready(fn.name)
        return str(cfg["FunctionArn"])

    def ensure_mapping(self, queue_arn: str) -> str:
        lam = self.c("lambda")
        m = self.stack.mapping
        desired = {"BatchSize": m.batch_size, "MaximumBatchingWindowInSeconds": m.batching_window_s,
                   "FunctionResponseTypes": list(m.function_response_types),
                   "ScalingConfig": {"MaximumConcurrency": m.maximum_concurrency}}
        found = _aws("list event source mappings", lam.list_event_source_mappings, EventSourceArn=queue_arn,
                     FunctionName=m.function)["EventSourceMappings"]
        found = [e for e in found if e.get("State") not in ("Deleting",)]
        if not found:
            uuid = _create_with_retry(f"create event source mapping {m.queue} -> {m.function}", lambda: (
                lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=m.function,
                                                Enabled=m.enabled, **desired)))["UUID"]
            self.changes.append(f"created event source mapping {m.queue} -> {m.function}")
        else:
            esm = found[0]
            uuid = esm["UUID"]
            current = {k: esm.get(k) for k in desired}
            current["FunctionResponseTypes"] = list(esm.get("FunctionResponseTypes") or [])
            current["ScalingConfig"] = {"MaximumConcurrency": (esm.get("ScalingConfig") or {}).get(
                "MaximumConcurrency")}
            current["MaximumBatchingWindowInSeconds"] = esm.get("MaximumBatchingWindowInSeconds") or 0
            diff = _diff(current, desired)
            state_now = esm.get("State")
            if (state_now == "Disabled") == m.enabled:
                diff["State"] = (state_now, "Enabled" if m.enabled else "Disabled")
            if diff and self.c.target.is_emulator:
                # LocalStack rebuilds the poller on UpdateEventSourceMapping and the old poller thread then writes
                # "Disabled" over the new one's state (a race in its esm_worker): replace the mapping instead.
                self._delete_mapping(uuid)
                uuid = _create_with_retry(f"create event source mapping {m.queue} -> {m.function}", lambda: (
                    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=m.function,
                                                    Enabled=m.enabled, **desired)))["UUID"]
                self.changes.append(f"replaced event source mapping {m.queue} -> {m.function}: "
                                    f"{_describe_diff(diff)}")
            elif diff:
                _aws(f"update event source mapping {uuid}", lam.update_event_source_mapping, UUID=uuid,
                     Enabled=m.enabled, **{k: desired[k] for k in diff if k in desired})
                self.changes.append(f"updated event source mapping {m.queue} -> {m.function}: {_describe_diff(diff)}")
        settled = "Enabled" if m.enabled else "Disabled"
        wait_until(lambda: lam.get_event_source_mapping(UUID=uuid).get("State") == settled,
                   FUNCTION_READY_TIMEOUT_S, interval=0.1, what=f"event source mapping {uuid} {settled}")
        return str(uuid)

    def _delete_mapping(self, uuid: str) -> None:
        _delete_mapping(self.c("lambda"), uuid)

    def prune_notifier(self) -> None:
        """Back to the direct topology: delete the notifier a previous deploy created (after re-wiring S3)."""
        st = self.stack
        full = build_stack(st.name, "default", overrides={"topology": "notifier"}, account=st.account,
                           region=st.region, qualifier=_qualifier_of(st))
        assert full.notifier is not None
        gone = _delete_function_resources(self.c, full.notifier.name, full.notifier.log_group,
                                          full.notifier.role_name)
        self.changes += [f"deleted {what} (no longer in the definition)" for what in gone]

    # ---- all of it ----
    def apply(self) -> dict[str, Any]:
        st = self.stack
        dlq_url, dlq_arn = self.ensure_queue(st.dlq.name, {
            "MessageRetentionPeriod": str(st.dlq.retention_s),
            "VisibilityTimeout": str(st.dlq.visibility_timeout_s),
        })
        queue_policy = st.queue_policy()
        queue_url, queue_arn = self.ensure_queue(st.queue.name, {
            "VisibilityTimeout": str(st.queue.visibility_timeout_s),
            "MessageRetentionPeriod": str(st.queue.retention_s),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": st.queue.max_receive_count}),
            "Policy": json.dumps(queue_policy) if queue_policy else "",
        })
        for bucket in st.buckets:
            self.ensure_bucket(bucket.name, bucket.versioned)
        fn = st.function
        role_arn = self.ensure_role(fn.role_name, st.role_policy(), f"thumbnailer of stack {st.name}")
        self.ensure_log_group(fn.log_group, fn.log_retention_days)
        function_arn = self.ensure_function(fn, role_arn, fn.environment(dlq_url))
        notifier_arn = None
        if st.notifier is not None:
            nf = st.notifier
            notifier_role = self.ensure_role(nf.role_name, st.notifier_policy(), f"notifier of stack {st.name}")
            self.ensure_log_group(nf.log_group, nf.log_retention_days)
            notifier_arn = self.ensure_function(nf, notifier_role, nf.environment(queue_url))
            self.ensure_invoke_permission(nf.name)
        self.ensure_notification(queue_arn, notifier_arn)
        if st.notifier is None:
            self.prune_notifier()
        mapping_uuid = self.ensure_mapping(queue_arn)
        outputs: dict[str, Any] = {
            "stack_name": st.name,
            "profile": st.profile,
            "topology": st.config.topology,
            "endpoint": self.c.target.endpoint or "aws",
            "region": st.region,
            "account": st.account,
            "input_bucket": st.input_bucket.name,
            "output_bucket": st.output_bucket_name,
            "single_bucket": st.output_bucket is None,
            "input_prefix": st.config.input_prefix,
            "output_prefix": st.config.output_prefix,
            "queue_url": queue_url,
            "queue_arn": queue_arn,
            "dlq_url": dlq_url,
            "dlq_arn": dlq_arn,
            "function_name": fn.name,
            "function_arn": function_arn,
            "role_name": fn.role_name,
            "role_arn": role_arn,
            "log_group": fn.log_group,
            "event_source_mapping_uuid": mapping_uuid,
            "architecture": fn.architecture,
            "memory_mb": fn.memory_mb,
            "timeout_s": fn.timeout_s,
        }
        if st.notifier is not None:
            outputs["notifier_function_name"] = st.notifier.name
            outputs["notifier_function_arn"] = notifier_arn
        return outputs


def _norm_notifications(conf: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...], tuple[tuple[str, str], ...]]]:
    out = []
    for key, arn_key in (("QueueConfigurations", "QueueArn"), ("LambdaFunctionConfigurations", "LambdaFunctionArn"),
                         ("TopicConfigurations", "TopicArn")):
        for c in conf.get(key, []) or []:
            rules = ((c.get("Filter") or {}).get("Key") or {}).get("FilterRules", [])
            out.append((key, str(c.get(arn_key, "")), tuple(sorted(c.get("Events", []))),
                        tuple(sorted((r["Name"].lower(), r["Value"]) for r in rules))))
    return sorted(out)


def load_code(target: Target, code_path: Path | None) -> bytes:
    """The function zip: an explicit path, else the code-only zip on the emulator (its Lambda python carries the
    dependencies) or the packaged arm64 artifact on AWS (`make package`)."""
    path = code_path if code_path is not None else (None if target.is_emulator else DEFAULT_ARTIFACT)
    if path is None:
        return code_zip_bytes()
    if not path.is_file():
        raise InfraError(InfraErrorCode.PACKAGE_FAILED,
                         f"Expected a function zip at {path} but received no file (run `make package` first)")
    data = path.read_bytes()
    if len(data) > MAX_DIRECT_UPLOAD_BYTES:
        raise InfraError(InfraErrorCode.PACKAGE_FAILED,
                         f"Expected at most {MAX_DIRECT_UPLOAD_BYTES} bytes for a direct upload but received "
                         f"{len(data)} bytes in {path}: deploy it with `make deploy-aws` (CDK assets)")
    return data


def write_outputs(path: Path, outputs: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(outputs, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_outputs(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InfraError(InfraErrorCode.NOT_DEPLOYED,
                         f"Expected deploy outputs at {path} but received no file (deploy the stack first)")
    return dict(json.loads(path.read_text()))


def deploy(stack: Stack, clients: Clients, *, code: bytes | None = None,
           outputs_path: Path | None = None) -> DeployReport:
    """Lint (errors block), then create or update every resource in place; returns the change report."""
    findings = lint(stack)
    blocking = errors(findings)
    if blocking:
        raise InfraError(InfraErrorCode.LINT_FAILED,
                         f"stack {stack.name} has {len(blocking)} lint error(s): "
                         + "; ".join(str(f) for f in blocking))
    deployer = Deployer(stack, clients, code if code is not None else code_zip_bytes())
    outputs = deployer.apply()
    if outputs_path is not None:
        write_outputs(outputs_path, outputs)
    return DeployReport(stack_name=stack.name, profile=stack.profile, endpoint=clients.target.endpoint or "aws",
                        changes=deployer.changes, outputs=outputs, findings=findings, outputs_path=outputs_path)


# ---- destroy -------------------------------------------------------------------------------------------------------
def _empty_bucket(s3: Any, name: str) -> int:
    count = 0
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=name):
        objects = [{"Key": o["Key"], "VersionId": o["VersionId"]}
                   for o in (page.get("Versions", []) or []) + (page.get("DeleteMarkers", []) or [])]
        for i in range(0, len(objects), 1000):
            _aws(f"empty bucket {name}", s3.delete_objects, Bucket=name,
                 Delete={"Objects": objects[i:i + 1000], "Quiet": True})
            count += len(objects[i:i + 1000])
    return count


def _delete_mapping(lam: Any, uuid: str) -> None:
    """Delete an event source mapping and wait until it is gone (deletion is asynchronous)."""
    _aws(f"delete event source mapping {uuid}", lam.delete_event_source_mapping, UUID=uuid)

    def gone() -> bool:
        try:
            lam.get_event_source_mapping(UUID=uuid)
            return False
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
        # LocalStack answers 404 to Get while the mapping still blocks a new one until its poller has stopped
        listed = lam.get_paginator("list_event_source_mappings").paginate().build_full_result()
        return all(e["UUID"] != uuid for e in listed.get("EventSourceMappings", []))

    wait_until(gone, FUNCTION_READY_TIMEOUT_S, interval=0.1, what=f"event source mapping {uuid} deleted")


def _delete_if_present(what: str, absent_code: str, delete: Callable[[], Any]) -> bool:
    """Run `delete`; False when AWS says the resource is already gone (`absent_code`), DESTROY_FAILED otherwise."""
    try:
        delete()
    except ClientError as exc:
        if _code(exc) != absent_code:
            raise InfraError(InfraErrorCode.DESTROY_FAILED, f"delete {what}: {exc}") from exc
        return False
    return True


def _delete_function_resources(clients: Clients, name: str, log_group: str, role: str) -> list[str]:
    """Delete a function, its log group and its role (each if present); what was deleted."""
    lam, iam, logs = clients("lambda"), clients("iam"), clients("logs")

    def delete_role() -> None:
        for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=role, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=role)

    steps: list[tuple[str, str, Callable[[], Any]]] = [
        (f"function {name}", "ResourceNotFoundException", lambda: lam.delete_function(FunctionName=name)),
        (f"log group {log_group}", "ResourceNotFoundException",
         lambda: logs.delete_log_group(logGroupName=log_group)),
        (f"role {role}", "NoSuchEntity", delete_role),
    ]
    return [what for what, absent, delete in steps if _delete_if_present(what, absent, delete)]


def destroy(stack: Stack, clients: Clients) -> DestroyReport:
    """Delete every resource the stack's names cover, whatever profile or topology deployed them, if present."""
    report = DestroyReport(stack.name)
    lam, s3, sqs = clients("lambda"), clients("s3"), clients("sqs")
    # the same names under every profile/topology: the output bucket and the notifier exist only in some
    kw = {"account": stack.account, "region": stack.region, "qualifier": _qualifier_of(stack)}
    full = build_stack(stack.name, "default", overrides={"topology": "notifier"}, **kw)
    assert full.notifier is not None
    functions = [(stack.function.name, stack.function.log_group, stack.function.role_name),
                 (full.notifier.name, full.notifier.log_group, full.notifier.role_name)]
    for name, _, _ in functions:
        try:
            mappings = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise InfraError(InfraErrorCode.DESTROY_FAILED, f"list mappings of {name}: {exc}") from exc
            mappings = []
        for esm in mappings:
            _delete_mapping(lam, esm["UUID"])
            report.deleted.append(f"event source mapping {esm['UUID']}")
    for name, log_group, role in functions:
        report.deleted += _delete_function_resources(clients, name, log_group, role)
    for name in sorted({stack.input_bucket.name, stack.output_bucket_name, full.output_bucket_name}):
        try:
            s3.head_bucket(Bucket=name)
        except ClientError:
            continue
        removed = _empty_bucket(s3, name)
        try:
            s3.delete_bucket(Bucket=name)
        except ClientError as exc:
            # NoSuchBucket: gone already (LocalStack can answer 500 after deleting; the SDK's retry then sees 404)
            if _code(exc) != "NoSuchBucket":
                raise InfraError(InfraErrorCode.DESTROY_FAILED, f"delete bucket {name}: {exc}") from exc
        report.deleted.append(f"bucket {name} ({removed} object version(s))")
    for queue in (stack.queue.name, stack.dlq.name):
        try:
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        except ClientError:
            continue
        _aws(f"delete queue {queue}", sqs.delete_queue, QueueUrl=url)
        report.deleted.append(f"queue {queue}")
    return report


def _qualifier_of(stack: Stack) -> str:
    suffix = "-input"
    middle = stack.input_bucket.name[len(stack.name):-len(suffix)]
    return middle[1:] if middle.startswith("-") else ""


# ---- describe ------------------------------------------------------------------------------------------------------
def describe(stack: Stack, clients: Clients) -> list[str]:
    """One line per resource of the stack (present or missing) with queue and DLQ depths."""
    lines: list[str] = []
    s3, sqs, lam = clients("s3"), clients("sqs"), clients("lambda")
    for bucket in stack.buckets:
        try:
            s3.head_bucket(Bucket=bucket.name)
            lines.append(f"bucket   {bucket.name}: present")
        except ClientError:
            lines.append(f"bucket   {bucket.name}: MISSING")
    for queue in (stack.queue, stack.dlq):
        try:
            url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            lines.append(f"queue    {queue.name}: {attrs.get('ApproximateNumberOfMessages', '?')} visible, "
                         f"{attrs.get('ApproximateNumberOfMessagesNotVisible', '?')} in flight")
        except ClientError:
            lines.append(f"queue    {queue.name}: MISSING")
    try:
        cfg = lam.get_function_configuration(FunctionName=stack.function.name)
        lines.append(f"function {stack.function.name}: {cfg.get('State')} ({cfg.get('MemorySize')} MB, "
                     f"{cfg.get('Timeout')} s, {','.join(cfg.get('Architectures') or [])})")
        for esm in lam.list_event_source_mappings(FunctionName=stack.function.name)["EventSourceMappings"]:
            lines.append(f"mapping  {esm['UUID']}: {esm.get('State')} batch {esm.get('BatchSize')}")
    except ClientError:
        lines.append(f"function {stack.function.name}: MISSING")
    if stack.notifier is not None:
        try:
            cfg = lam.get_function_configuration(FunctionName=stack.notifier.name)
            lines.append(f"notifier {stack.notifier.name}: {cfg.get('State')}")
        except ClientError:
            lines.append(f"notifier {stack.notifier.name}: MISSING")
    return lines


# ---- entry points for the harness CLI ------------------------------------------------------------------------------
def outputs_file(settings: "HarnessSettings", stack_name: str) -> Path:
    return settings.home / "outputs" / f"{stack_name}.json"


def deploy_for_harness(settings: "HarnessSettings", stack_name: str = "thumbs",
                       profile: str = "default") -> DeployReport:
    """Deploy `stack_name` to the emulator of `settings`; outputs go to <home>/outputs/<stack>.json."""
    clients = Clients(Target.emulator(settings))
    stack = stack_for_target(clients, stack_name, profile)
    return deploy(stack, clients, outputs_path=outputs_file(settings, stack_name))


def describe_for_harness(settings: "HarnessSettings", stack_name: str = "thumbs") -> list[str]:
    clients = Clients(Target.emulator(settings))
    path = outputs_file(settings, stack_name)
    outputs = read_outputs(path) if path.is_file() else {}
    profile = str(outputs.get("profile", "default"))
    stack = stack_for_target(clients, stack_name, profile, {"topology": str(outputs.get("topology", "direct"))})
    return [f"stack {stack_name} (profile {profile})"] + [f"  {line}" for line in describe(stack, clients)]
