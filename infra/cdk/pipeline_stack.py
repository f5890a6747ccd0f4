"""One CDK stack rendered from an infra.stack.Stack: the same names, settings, policies and mapping as deploy/."""

from __future__ import annotations

import re
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.errors import InfraError, InfraErrorCode
from infra.lint import errors, lint
from infra.stack import Stack


class PipelineStack(cdk.Stack):
    """Buckets, queues, notification, role, log group, function and event-source mapping of one pipeline."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition: Stack,
        code_zip: Path,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=f"Thumbnail pipeline {definition.name} (profile {definition.profile})",
        )
        d = definition
        # the same lint as before every boto3 deploy: errors stop the synth, warnings show as CDK warnings
        findings = lint(d)
        if errors(findings):
            raise InfraError(InfraErrorCode.LINT_FAILED, "; ".join(str(f) for f in errors(findings)))
        for finding in findings:
            text = re.sub(
                r"\$\{Token\[AWS\.(\w+)\.\d+\]\}", r"<\1>", f"{finding.code} [{finding.resource}] {finding.message}"
            )
            cdk.Annotations.of(self).add_warning_v2(f"pipeline-lint:{finding.code}", text)
        for key, value in d.tags:
            cdk.Tags.of(self).add(key, value)

        dlq = sqs.Queue(
            self,
            d.dlq.logical_id,
            queue_name=d.dlq.name,
            retention_period=cdk.Duration.seconds(d.dlq.retention_s),
            visibility_timeout=cdk.Duration.seconds(d.dlq.visibility_timeout_s),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        assert d.queue.max_receive_count is not None
        queue = sqs.Queue(
            self,
            d.queue.logical_id,
            queue_name=d.queue.name,
            retention_period=cdk.Duration.seconds(d.queue.retention_s),
            visibility_timeout=cdk.Duration.seconds(d.queue.visibility_timeout_s),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=d.queue.max_receive_count, queue=dlq),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

        buckets: dict[str, s3.Bucket] = {}
        for spec in d.buckets:
            bucket = s3.Bucket(
                self,
                spec.logical_id,
                bucket_name=spec.name,
                versioned=spec.versioned,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                encryption=s3.BucketEncryption.S3_MANAGED,
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            buckets[spec.name] = bucket

        fn = d.function
        role = iam.Role(
            self,
            "ThumbnailerRole",
            role_name=fn.role_name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"thumbnailer of stack {d.name}",
            inline_policies={"pipeline": iam.PolicyDocument.from_json(d.role_policy())},
        )
        log_group = logs.CfnLogGroup(
            self, "ThumbnailerLogs", log_group_name=fn.log_group, retention_in_days=fn.log_retention_days
        )
        # L1 function: the L2 adds a DependsOn on the role that duplicates the GetAtt (cfn-lint W3005).
        code = s3_assets.Asset(self, "ThumbnailerCode", path=str(code_zip))
        function = lambda_.CfnFunction(
            self,
            fn.logical_id,
            function_name=fn.name,
            runtime=fn.runtime,
            handler=fn.handler,
            architectures=[fn.architecture],
            code=lambda_.CfnFunction.CodeProperty(s3_bucket=code.s3_bucket_name, s3_key=code.s3_object_key),
            timeout=fn.timeout_s,
            memory_size=fn.memory_mb,
            role=role.role_arn,
            environment=lambda_.CfnFunction.EnvironmentProperty(variables=fn.environment(dlq.queue_url)),
        )
        function.add_resource_dependency(log_group)

        # one zip, two handlers: the notifier uses the same code asset
        code_location = lambda_.CfnFunction.CodeProperty(s3_bucket=code.s3_bucket_name, s3_key=code.s3_object_key)
        n = d.notification
        rules = s3.CfnBucket.NotificationFilterProperty(
            s3_key=s3.CfnBucket.S3KeyFilterProperty(
                rules=[s3.CfnBucket.FilterRuleProperty(name="prefix", value=n.prefix)]
            )
        )
        cfn_input = buckets[n.bucket].node.default_child
        assert isinstance(cfn_input, s3.CfnBucket)
        # Native S3 notifications with the prefix filter (no custom-resource Lambda). S3 validates the destination
        # when the bucket is created, hence the dependencies on the queue policy / the invoke permission.
        queue_policy_doc = d.queue_policy()
        if d.notifier is None:
            assert queue_policy_doc is not None
            queue_policy = sqs.CfnQueuePolicy(
                self, "JobQueuePolicy", queues=[queue.queue_url], policy_document=queue_policy_doc
            )
            cfn_input.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
                queue_configurations=[
                    s3.CfnBucket.QueueConfigurationProperty(event=e, queue=queue.queue_arn, filter=rules)
                    for e in n.events
                ]
            )
            cfn_input.add_resource_dependency(queue_policy)
        else:
            nf = d.notifier
            notifier_role = iam.Role(
                self,
                "NotifierRole",
                role_name=nf.role_name,
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"notifier of stack {d.name}",
                inline_policies={"pipeline": iam.PolicyDocument.from_json(d.notifier_policy())},
            )
            notifier_logs = logs.CfnLogGroup(
                self, "NotifierLogs", log_group_name=nf.log_group, retention_in_days=nf.log_retention_days
            )
            notifier = lambda_.CfnFunction(
                self,
                nf.logical_id,
                function_name=nf.name,
                runtime=nf.runtime,
                handler=nf.handler,
                architectures=[nf.architecture],
                code=code_location,
                timeout=nf.timeout_s,
                memory_size=nf.memory_mb,
                role=notifier_role.role_arn,
                environment=lambda_.CfnFunction.EnvironmentProperty(variables=nf.environment(queue.queue_url)),
            )
            notifier.add_resource_dependency(notifier_logs)
            permission = lambda_.CfnPermission(
                self,
                "NotifierInvokeFromInput",
                action="lambda:InvokeFunction",
                function_name=notifier.ref,
                principal="s3.amazonaws.com",
                source_arn=d.bucket_arn(d.input_bucket.name),
                source_account=d.account,
            )
            cfn_input.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
                lambda_configurations=[
                    s3.CfnBucket.LambdaConfigurationProperty(event=e, function=notifier.attr_arn, filter=rules)
                    for e in n.events
                ]
            )
            cfn_input.add_resource_dependency(permission)
            cdk.CfnOutput(self, "OutNotifierFunctionName", value=notifier.ref, key="NotifierFunctionName")

        m = d.mapping
        lambda_.CfnEventSourceMapping(
            self,
            "JobQueueMapping",
            function_name=function.ref,
            event_source_arn=queue.queue_arn,
            batch_size=m.batch_size,
            maximum_batching_window_in_seconds=m.batching_window_s,
            function_response_types=list(m.function_response_types) or None,
            scaling_config=lambda_.CfnEventSourceMapping.ScalingConfigProperty(
                maximum_concurrency=m.maximum_concurrency
            ),
            enabled=m.enabled,
        )

        outputs = {
            "InputBucket": d.input_bucket.name,
            "OutputBucket": d.output_bucket_name,
            "QueueUrl": queue.queue_url,
            "QueueArn": queue.queue_arn,
            "DlqUrl": dlq.queue_url,
            "DlqArn": dlq.queue_arn,
            "FunctionName": function.ref,
            "LogGroup": fn.log_group,
        }
        for key, value in outputs.items():
            cdk.CfnOutput(self, f"Out{key}", value=value, key=key)
