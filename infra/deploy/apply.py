"""Apply a stack definition to a target: lint, then create or update every resource in place, recording each change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from common.waiting import wait_until
from infra.deploy.calls import FUNCTION_READY_TIMEOUT_S, aws_call, create_with_retry, error_code
from infra.deploy.code import stack_code
from infra.deploy.destroy import delete_function_resources, delete_mapping
from infra.deploy.diff import (
    describe_diff,
    diff_attributes,
    normalize_notifications,
    normalize_policy,
    normalize_queue_attribute,
)
from infra.deploy.outputs import StackOutputs, write_outputs
from infra.deploy.report import DeployReport
from infra.deploy.target import Clients, every_name_of
from infra.errors import InfraError, InfraErrorCode
from infra.lint import errors, lint
from infra.package import code_sha256
from infra.stack import FunctionSpec, NotifierSpec, Stack


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
            if error_code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                return None
            raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"get queue url {name}: {exc}") from exc

    def ensure_queue(self, name: str, desired: dict[str, str]) -> tuple[str, str]:
        sqs = self.c("sqs")
        url = self._queue_url(name)
        if url is None:
            url = aws_call(
                f"create queue {name}",
                sqs.create_queue,
                QueueName=name,
                Attributes={k: v for k, v in desired.items() if v != ""},
                tags=self.tags,
            )["QueueUrl"]
            self.changes.append(f"created queue {name}")
        else:
            attrs = aws_call(f"read queue {name}", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["All"])[
                "Attributes"
            ]
            current = {k: normalize_queue_attribute(k, attrs.get(k)) for k in desired}
            wanted = {k: normalize_queue_attribute(k, v) for k, v in desired.items()}
            diff = diff_attributes(current, wanted)
            if diff:
                aws_call(
                    f"update queue {name}",
                    sqs.set_queue_attributes,
                    QueueUrl=url,
                    Attributes={k: desired[k] for k in diff},
                )
                self.changes.append(f"updated queue {name}: {describe_diff(diff)}")
        arn = aws_call(f"read queue {name}", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return url, arn

    # ---- buckets ----
    def ensure_bucket(self, name: str, versioned: bool) -> None:
        s3 = self.c("s3")
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise InfraError(
                    InfraErrorCode.DEPLOY_FAILED, f"bucket {name} exists but is not usable from this account: {exc}"
                ) from exc
            kwargs: dict[str, Any] = {"Bucket": name}
            if self.c.target.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.c.target.region}
            aws_call(f"create bucket {name}", s3.create_bucket, **kwargs)
            aws_call(
                f"tag bucket {name}",
                s3.put_bucket_tagging,
                Bucket=name,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in self.tags.items()]},
            )
            self.changes.append(f"created bucket {name}")
        block = {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
        try:
            current_block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        except ClientError:
            current_block = {}
        if current_block != block:
            aws_call(
                f"block public access {name}",
                s3.put_public_access_block,
                Bucket=name,
                PublicAccessBlockConfiguration=block,
            )
            self.changes.append(f"updated bucket {name}: public access blocked")
        status = aws_call(f"read versioning {name}", s3.get_bucket_versioning, Bucket=name).get("Status")
        if versioned and status != "Enabled":
            aws_call(
                f"enable versioning {name}",
                s3.put_bucket_versioning,
                Bucket=name,
                VersioningConfiguration={"Status": "Enabled"},
            )
            self.changes.append(f"updated bucket {name}: versioning enabled")
        elif not versioned and status == "Enabled":
            aws_call(
                f"suspend versioning {name}",
                s3.put_bucket_versioning,
                Bucket=name,
                VersioningConfiguration={"Status": "Suspended"},
            )
            self.changes.append(f"updated bucket {name}: versioning suspended")

    def ensure_notification(self, queue_arn: str, function_arn: str | None) -> None:
        """ObjectCreated under the prefix -> the main queue (direct) or the notifier function (notifier)."""
        n = self.stack.notification
        s3 = self.c("s3")
        rules = {"Key": {"FilterRules": [{"Name": "prefix", "Value": n.prefix}]}}
        if n.function is not None:
            assert function_arn is not None
            wanted = {
                "LambdaFunctionConfigurations": [
                    {"Id": n.id, "LambdaFunctionArn": function_arn, "Events": list(n.events), "Filter": rules}
                ]
            }
            target = n.function
        else:
            wanted = {
                "QueueConfigurations": [{"Id": n.id, "QueueArn": queue_arn, "Events": list(n.events), "Filter": rules}]
            }
            target = n.queue
        current = aws_call(f"read notification {n.bucket}", s3.get_bucket_notification_configuration, Bucket=n.bucket)
        if normalize_notifications(current) == normalize_notifications(wanted):
            return
        aws_call(
            f"configure notification {n.bucket}",
            s3.put_bucket_notification_configuration,
            Bucket=n.bucket,
            NotificationConfiguration=wanted,
        )
        self.changes.append(f"configured notification {n.bucket} {n.prefix}* -> {target}")

    def ensure_invoke_permission(self, function_name: str) -> None:
        """Let only this stack's input bucket (in this account) invoke the notifier."""
        lam = self.c("lambda")
        sid = "s3-input-bucket"
        source_arn = self.stack.bucket_arn(self.stack.input_bucket.name)
        try:
            policy = json.loads(lam.get_policy(FunctionName=function_name)["Policy"])
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"read policy of {function_name}: {exc}") from exc
            policy = {"Statement": []}
        for st in policy.get("Statement", []):
            if st.get("Sid") == sid:
                cond = json.dumps(st.get("Condition", {}))
                if source_arn in cond and self.stack.account in cond:
                    return
                aws_call(f"remove permission {sid}", lam.remove_permission, FunctionName=function_name, StatementId=sid)
        aws_call(
            f"add permission {sid} to {function_name}",
            lam.add_permission,
            FunctionName=function_name,
            StatementId=sid,
            Action="lambda:InvokeFunction",
            Principal="s3.amazonaws.com",
            SourceArn=source_arn,
            SourceAccount=self.stack.account,
        )
        self.changes.append(f"allowed {self.stack.input_bucket.name} to invoke {function_name}")

    # ---- IAM and logs ----
    def ensure_role(self, name: str, policy: dict[str, Any], description: str) -> str:
        iam = self.c("iam")
        trust = self.stack.trust_policy()
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"read role {name}: {exc}") from exc
            role = aws_call(
                f"create role {name}",
                iam.create_role,
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=description,
                Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()],
            )["Role"]
            self.changes.append(f"created role {name}")
        else:
            if normalize_policy(role["AssumeRolePolicyDocument"]) != normalize_policy(trust):
                aws_call(
                    f"update trust policy {name}",
                    iam.update_assume_role_policy,
                    RoleName=name,
                    PolicyDocument=json.dumps(trust),
                )
                self.changes.append(f"updated role {name}: trust policy")
        try:
            current = normalize_policy(iam.get_role_policy(RoleName=name, PolicyName="pipeline")["PolicyDocument"])
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"read role policy {name}: {exc}") from exc
            current = None
        if current != normalize_policy(policy):
            aws_call(
                f"put role policy {name}",
                iam.put_role_policy,
                RoleName=name,
                PolicyName="pipeline",
                PolicyDocument=json.dumps(policy),
            )
            self.changes.append(f"{'updated' if current else 'attached'} policy pipeline on role {name}")
        return str(role["Arn"])

    def ensure_log_group(self, name: str, days: int) -> None:
        logs = self.c("logs")
        groups = aws_call(f"read log group {name}", logs.describe_log_groups, logGroupNamePrefix=name)["logGroups"]
        group = next((g for g in groups if g["logGroupName"] == name), None)
        if group is None:
            aws_call(f"create log group {name}", logs.create_log_group, logGroupName=name, tags=self.tags)
            self.changes.append(f"created log group {name}")
        if group is None or group.get("retentionInDays") != days:
            aws_call(f"set retention {name}", logs.put_retention_policy, logGroupName=name, retentionInDays=days)
            if group is not None:
                self.changes.append(f"updated log group {name}: retention {group.get('retentionInDays')} -> {days}")

    # ---- function and mapping ----
    def _wait_function_ready(self, name: str) -> dict[str, Any]:
        lam = self.c("lambda")

        def ready() -> dict[str, Any] | None:
            cfg = lam.get_function_configuration(FunctionName=name)
            if cfg.get("State") == "Failed" or cfg.get("LastUpdateStatus") == "Failed":
                reason = cfg.get("StateReason") or cfg.get("LastUpdateStatusReason")
                raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"function {name} failed: {reason}")
            if cfg.get("State") == "Active" and cfg.get("LastUpdateStatus", "Successful") == "Successful":
                return dict(cfg)
            return None

        cfg: dict[str, Any] | None = wait_until(
            ready, FUNCTION_READY_TIMEOUT_S, interval=0.1, what=f"function {name} Active"
        )
        assert cfg is not None  # wait_until returns only a truthy value
        return cfg

    def ensure_function(self, fn: FunctionSpec | NotifierSpec, role_arn: str, environment: dict[str, str]) -> str:
        lam = self.c("lambda")
        desired = {
            "Runtime": fn.runtime,
            "Role": role_arn,
            "Handler": fn.handler,
            "Timeout": fn.timeout_s,
            "MemorySize": fn.memory_mb,
            "Environment": {"Variables": environment},
        }
        try:
            lam.get_function_configuration(FunctionName=fn.name)
            exists = True
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"read function {fn.name}: {exc}") from exc
            exists = False
        if not exists:
            create_with_retry(
                f"create function {fn.name}",
                lambda: lam.create_function(
                    FunctionName=fn.name,
                    Code={"ZipFile": self.code},
                    Architectures=[fn.architecture],
                    PackageType="Zip",
                    Publish=False,
                    Tags=self.tags,
                    **desired,
                ),
            )
            self.changes.append(f"created function {fn.name}")
            cfg = self._wait_function_ready(fn.name)
            return str(cfg["FunctionArn"])
        cfg = self._wait_function_ready(fn.name)
        current = {k: cfg.get(k) for k in desired}
        current["Environment"] = {"Variables": (cfg.get("Environment") or {}).get("Variables", {})}
        diff = diff_attributes(current, desired)
        if diff:
            aws_call(
                f"update function {fn.name}",
                lam.update_function_configuration,
                FunctionName=fn.name,
                **{k: desired[k] for k in diff},
            )
            self.changes.append(f"updated function {fn.name}: {describe_diff(diff)}")
            cfg = self._wait_function_ready(fn.name)
        arch_now = (cfg.get("Architectures") or ["x86_64"])[0]
        if cfg.get("CodeSha256") != code_sha256(self.code) or arch_now != fn.architecture:
            aws_call(
                f"update code {fn.name}",
                lam.update_function_code,
                FunctionName=fn.name,
                ZipFile=self.code,
                Architectures=[fn.architecture],
            )
            what = "code" if arch_now == fn.architecture else f"code, architecture {arch_now} -> {fn.architecture}"
            self.changes.append(f"updated function {fn.name}: {what}")
            cfg = self._wait_function_ready(fn.name)
        return str(cfg["FunctionArn"])

    def ensure_mapping(self, queue_arn: str) -> str:
        lam = self.c("lambda")
        m = self.stack.mapping
        desired = {
            "BatchSize": m.batch_size,
            "MaximumBatchingWindowInSeconds": m.batching_window_s,
            "FunctionResponseTypes": list(m.function_response_types),
            "ScalingConfig": {"MaximumConcurrency": m.maximum_concurrency},
        }
        found = aws_call(
            "list event source mappings",
            lam.list_event_source_mappings,
            EventSourceArn=queue_arn,
            FunctionName=m.function,
        )["EventSourceMappings"]
        found = [e for e in found if e.get("State") not in ("Deleting",)]
        if not found:
            uuid = create_with_retry(
                f"create event source mapping {m.queue} -> {m.function}",
                lambda: lam.create_event_source_mapping(
                    EventSourceArn=queue_arn, FunctionName=m.function, Enabled=m.enabled, **desired
                ),
            )["UUID"]
            self.changes.append(f"created event source mapping {m.queue} -> {m.function}")
        else:
            esm = found[0]
            uuid = esm["UUID"]
            current = {k: esm.get(k) for k in desired}
            current["FunctionResponseTypes"] = list(esm.get("FunctionResponseTypes") or [])
            current["ScalingConfig"] = {
                "MaximumConcurrency": (esm.get("ScalingConfig") or {}).get("MaximumConcurrency")
            }
            current["MaximumBatchingWindowInSeconds"] = esm.get("MaximumBatchingWindowInSeconds") or 0
            diff = diff_attributes(current, desired)
            state_now = esm.get("State")
            if (state_now == "Disabled") == m.enabled:
                diff["State"] = (state_now, "Enabled" if m.enabled else "Disabled")
            if diff and self.c.target.is_emulator:
                # LocalStack rebuilds the poller on UpdateEventSourceMapping and the old poller thread then writes
                # "Disabled" over the new one's state (a race in its esm_worker): replace the mapping instead.
                self._delete_mapping(uuid)
                uuid = create_with_retry(
                    f"create event source mapping {m.queue} -> {m.function}",
                    lambda: lam.create_event_source_mapping(
                        EventSourceArn=queue_arn, FunctionName=m.function, Enabled=m.enabled, **desired
                    ),
                )["UUID"]
                self.changes.append(f"replaced event source mapping {m.queue} -> {m.function}: {describe_diff(diff)}")
            elif diff:
                aws_call(
                    f"update event source mapping {uuid}",
                    lam.update_event_source_mapping,
                    UUID=uuid,
                    Enabled=m.enabled,
                    **{k: desired[k] for k in diff if k in desired},
                )
                self.changes.append(f"updated event source mapping {m.queue} -> {m.function}: {describe_diff(diff)}")
        settled = "Enabled" if m.enabled else "Disabled"
        wait_until(
            lambda: lam.get_event_source_mapping(UUID=uuid).get("State") == settled,
            FUNCTION_READY_TIMEOUT_S,
            interval=0.1,
            what=f"event source mapping {uuid} {settled}",
        )
        return str(uuid)

    def _delete_mapping(self, uuid: str) -> None:
        delete_mapping(self.c("lambda"), uuid)

    def prune_notifier(self) -> None:
        """Back to the direct topology: delete the notifier a previous deploy created (after re-wiring S3)."""
        st = self.stack
        full = every_name_of(st)
        assert full.notifier is not None
        gone = delete_function_resources(self.c, full.notifier.name, full.notifier.log_group, full.notifier.role_name)
        self.changes += [f"deleted {what} (no longer in the definition)" for what in gone]

    # ---- all of it ----
    def apply(self) -> StackOutputs:
        st = self.stack
        dlq_url, dlq_arn = self.ensure_queue(
            st.dlq.name,
            {
                "MessageRetentionPeriod": str(st.dlq.retention_s),
                "VisibilityTimeout": str(st.dlq.visibility_timeout_s),
            },
        )
        queue_policy = st.queue_policy()
        queue_url, queue_arn = self.ensure_queue(
            st.queue.name,
            {
                "VisibilityTimeout": str(st.queue.visibility_timeout_s),
                "MessageRetentionPeriod": str(st.queue.retention_s),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": st.queue.max_receive_count}
                ),
                "Policy": json.dumps(queue_policy) if queue_policy else "",
            },
        )
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
        return StackOutputs.from_stack(
            st,
            endpoint=self.c.target.label,
            queue_url=queue_url,
            queue_arn=queue_arn,
            dlq_url=dlq_url,
            dlq_arn=dlq_arn,
            function_arn=function_arn,
            role_arn=role_arn,
            mapping_uuid=mapping_uuid,
            notifier_arn=notifier_arn,
        )


def deploy(
    stack: Stack, clients: Clients, *, code: bytes | None = None, outputs_path: Path | None = None
) -> DeployReport:
    """Lint (errors block), then create or update every resource in place; returns the change report."""
    findings = lint(stack)
    blocking = errors(findings)
    if blocking:
        raise InfraError(
            InfraErrorCode.LINT_FAILED,
            f"stack {stack.name} has {len(blocking)} lint error(s): " + "; ".join(str(f) for f in blocking),
        )
    deployer = Deployer(stack, clients, code if code is not None else stack_code(stack))
    outputs = deployer.apply()
    if outputs_path is not None:
        write_outputs(outputs_path, outputs)
    return DeployReport(
        stack_name=stack.name,
        profile=stack.profile,
        endpoint=clients.target.label,
        changes=deployer.changes,
        outputs=outputs,
        findings=findings,
        outputs_path=outputs_path,
    )
