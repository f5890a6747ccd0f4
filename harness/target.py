"""`--target STACK`: a deployed stack reached by name through the standard credential chain, and its guard rails.

A target is found from its CloudFormation stack (infra.deploy.discover: outputs, else resources) with boto3's usual
chain: `--profile`, `--region`, `--endpoint-url`, or AWS_PROFILE / AWS_REGION / AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID
... from the environment. Nothing here deploys or changes the stack. The guard rails for real accounts live here too:
the request and cost estimate printed before a run, the `--yes` rule for non-loopback endpoints, the hard caps, the
chaos scenarios that can run without local process control, and deleting a run's own prefix afterwards.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from common.credentials import DEFAULT_REGION, LOOPBACK_HOSTS, TEST_ACCESS_KEY, TEST_SECRET_KEY
from common.errors import CodedError, expected
from infra.deploy.discover import discover
from infra.deploy.outputs import StackOutputs
from infra.deploy.target import Clients, Target
from infra.pricing import PRICES

# hard caps for a run against a deployed stack (whatever the scenario or the flags say)
MAX_UPLOADS = 2000
MAX_DURATION_S = 900.0

# request prices (USD, us-east-1, standard tiers; same caveat as infra.pricing: check before quoting money)
S3_PUT_USD = 0.005 / 1000  # PUT, COPY, POST, LIST
S3_GET_USD = 0.0004 / 1000  # GET, HEAD and the rest
SQS_USD = 0.40 / 1_000_000  # per 64 KiB request
LOGS_INGEST_USD_PER_GB = 0.50

# chaos scenarios that need neither local process control nor a change to the stack (the S3 fault proxy rewires the
# function's S3 endpoint, visibility/timeout/maxReceiveCount/peer consumers change the stack, crash/restart kill local
# processes): only these may run against a remote target
REMOTE_SAFE_CHAOS = ("poison",)


class TargetError(CodedError):
    """A --target that cannot be used: TARGET_NOT_FOUND, TARGET_UNREACHABLE, TARGET_NEEDS_YES, TARGET_REFUSED."""


NOT_FOUND = "TARGET_NOT_FOUND"
UNREACHABLE = "TARGET_UNREACHABLE"
NEEDS_YES = "TARGET_NEEDS_YES"
REFUSED = "TARGET_REFUSED"
CAP_EXCEEDED = "TARGET_CAP_EXCEEDED"


def is_loopback(endpoint: str | None) -> bool:
    """True for http(s)://127.x / localhost / ::1; False for AWS (None) and any other host."""
    if not endpoint:
        return False
    host = urlparse(endpoint).hostname or ""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def add_target_arguments(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    """--target STACK and the credential chain flags (--profile, --region, --endpoint-url) plus --yes."""
    p.add_argument(
        "--target",
        metavar="STACK",
        required=required,
        help="an already-deployed stack (CloudFormation name STACK or STACK-pipeline): found, never deployed",
    )
    p.add_argument("--aws-profile", "--profile", dest="aws_profile", help="AWS named profile (with --target)")
    p.add_argument("--region", help="AWS region (with --target; default AWS_REGION/AWS_DEFAULT_REGION)")
    p.add_argument("--endpoint-url", dest="endpoint_url", help="endpoint (with --target; default AWS_ENDPOINT_URL)")
    p.add_argument("--yes", action="store_true", help="accept the printed estimate (needed for non-local endpoints)")
    p.add_argument(
        "--as-remote",
        action="store_true",
        help="treat a loopback endpoint as a remote account: its guard rails and code paths (rehearse against the "
        "emulator what a run against AWS will do)",
    )


@dataclass(frozen=True)
class DeployedTarget:
    """A deployed stack: its outputs (as read off CloudFormation) and the boto3 session/endpoint that reached it."""

    name: str
    outputs: StackOutputs
    session: boto3.Session
    region: str
    endpoint: str | None  # None = AWS's own endpoints
    backend: str = "pillow"  # the function's THUMB_BACKEND
    as_remote: bool = False  # --as-remote: a loopback endpoint treated as a remote account (rehearsal, tests)

    @property
    def local(self) -> bool:
        return is_loopback(self.endpoint) and not self.as_remote

    @property
    def label(self) -> str:
        return self.endpoint or f"aws ({self.region})"

    def client(self, service: str, *, pool: int = 10, retries: int = 2) -> Any:
        config = Config(
            max_pool_connections=pool,
            retries={"max_attempts": retries, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            s3={"addressing_style": "path"} if self.endpoint else {},
        )
        return self.session.client(service, endpoint_url=self.endpoint, region_name=self.region, config=config)

    def describe(self) -> dict[str, Any]:
        """What a report says about the target: the stack, where it is, and what was read off it."""
        return {
            "name": self.name,
            "endpoint": self.label,
            "local": self.local,
            "backend": self.backend,
            "outputs": self.outputs.to_dict(),
        }


def resolve_endpoint(endpoint_url: str | None, env: Mapping[str, str] | None = None) -> str | None:
    source = os.environ if env is None else env
    return endpoint_url or source.get("AWS_ENDPOINT_URL") or None


def session_for(
    *, profile: str | None, region: str | None, endpoint: str | None, env: Mapping[str, str] | None = None
) -> tuple[boto3.Session, str]:
    """The standard chain's session; on a loopback endpoint with no credentials anywhere, the emulator's test ones."""
    source = os.environ if env is None else env
    region = region or source.get("AWS_REGION") or source.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    session = boto3.Session(profile_name=profile, region_name=region)
    if is_loopback(endpoint) and session.get_credentials() is None:
        session = boto3.Session(
            aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY, region_name=region
        )
    return session, region


def resolve(
    stack: str,
    *,
    profile: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    env: Mapping[str, str] | None = None,
    as_remote: bool = False,
) -> DeployedTarget:
    """Find `stack` (read-only). TARGET_NOT_FOUND when CloudFormation has no such complete stack, TARGET_UNREACHABLE
    when the endpoint or credentials do not answer."""
    endpoint = resolve_endpoint(endpoint_url, env)
    try:
        session, region = session_for(profile=profile, region=region, endpoint=endpoint, env=env)
        clients = Clients(Target(region=region, endpoint=endpoint, session=session))
        outputs = discover(clients, stack)
        env_vars = clients("lambda").get_function_configuration(FunctionName=outputs.function_name)
        backend = str(((env_vars.get("Environment") or {}).get("Variables") or {}).get("THUMB_BACKEND") or "pillow")
    except CodedError as exc:
        if exc.code == "NOT_DEPLOYED":
            raise TargetError(NOT_FOUND, exc.message) from exc
        if exc.code == "OUTPUTS_INVALID":
            raise TargetError(NOT_FOUND, f"stack {stack} is not a thumbnail pipeline: {exc.message}") from exc
        raise TargetError(UNREACHABLE, f"{endpoint or 'aws'}: {exc.message}") from exc
    except (BotoCoreError, ClientError) as exc:
        raise TargetError(UNREACHABLE, expected("an answering endpoint", f"stack {stack}", str(exc))) from exc
    return DeployedTarget(stack, outputs, session, region, endpoint, backend, as_remote)


@dataclass(frozen=True)
class Estimate:
    """Requests and cost of one load run against a deployed stack (an upper-bound style estimate)."""

    uploads: int
    requests: dict[str, int]
    usd: float
    lambda_gb_s: float

    def lines(self) -> list[str]:
        reqs = ", ".join(f"{k} {v}" for k, v in self.requests.items())
        return [
            f"estimate: {self.uploads} uploads -> {sum(self.requests.values())} requests ({reqs})",
            f"estimate: Lambda {self.lambda_gb_s:.1f} GB-s; about ${self.usd:.4f} in total (prices: infra.pricing + "
            "S3/SQS request list prices; check before quoting money)",
        ]


def estimate(
    uploads: int, outputs: StackOutputs, *, handler_ms: float = 1500.0, batch_size: int = 1, sizes: int | None = None
) -> Estimate:
    """Per upload: the PUT, the S3 -> SQS event, the poll/delete, one invocation per batch, a GET and a PUT per
    thumbnail, the harness' LIST + HEAD per thumbnail, and the clean-up DELETEs of the upload and its thumbnails."""
    n_sizes = sizes if sizes is not None else max(1, len(outputs.size_names))
    s3_put = uploads * (1 + n_sizes)  # upload + thumbnails
    s3_get = uploads * (1 + n_sizes)  # the function's GET + the harness' HEAD per thumbnail
    s3_list_delete = uploads * (1 + n_sizes) + 10 * n_sizes  # clean-up DELETEs (charged as free) + LISTs
    sqs = uploads * 3 + 200  # event send, receive, delete + depth samples
    invocations = max(1, -(-uploads // max(1, batch_size)))
    price = PRICES.get(outputs.architecture, PRICES["x86_64"])
    gb_s = uploads * handler_ms / 1000 * outputs.memory_mb / 1024
    usd = (
        s3_put * S3_PUT_USD
        + s3_get * S3_GET_USD
        + 10 * n_sizes * S3_PUT_USD
        + sqs * SQS_USD
        + invocations * price.usd_per_million_requests / 1e6
        + gb_s * price.usd_per_gb_s
    )
    return Estimate(
        uploads,
        {"s3_put": s3_put, "s3_get_head": s3_get, "s3_list_delete": s3_list_delete, "sqs": sqs, "lambda": invocations},
        usd,
        gb_s,
    )


def require_consent(target: DeployedTarget, est: Estimate, yes: bool, out: Callable[[str], None]) -> None:
    """Print the estimate; a non-loopback endpoint (AWS) needs --yes (TARGET_NEEDS_YES)."""
    for line in est.lines():
        out(line)
    if not target.local and not yes:
        raise TargetError(
            NEEDS_YES,
            f"Expected --yes to send {est.uploads} uploads to {target.label} (stack {target.name}) but received "
            "none: read the estimate above, then run again with --yes",
        )


def check_caps(uploads: int, duration_s: float) -> None:
    """The hard caps for deployed targets (TARGET_CAP_EXCEEDED): at most MAX_UPLOADS uploads and MAX_DURATION_S s."""
    if uploads > MAX_UPLOADS:
        raise TargetError(
            CAP_EXCEEDED, expected(f"at most {MAX_UPLOADS} uploads", "a run against a deployed stack", uploads)
        )
    if duration_s > MAX_DURATION_S:
        raise TargetError(
            CAP_EXCEEDED,
            expected(f"at most {MAX_DURATION_S:.0f} s of load", "a run against a deployed stack", duration_s),
        )


def refuse_chaos(names: list[str], target: DeployedTarget, *, controlled: bool | None = None) -> None:
    """Without local control of the target (a remote one, or `controlled=False`: an endpoint that is not this
    harness' emulator), scenarios that need local process control or change the stack are refused (REFUSED)."""
    if target.local if controlled is None else controlled:
        return
    refused = [n for n in names if n not in REMOTE_SAFE_CHAOS]
    if refused:
        where = "remote target" if not target.local else "target outside this harness' emulator"
        raise TargetError(
            REFUSED,
            f"Expected chaos scenarios that run without local process control for {where} {target.label} but "
            f"received {', '.join(refused)} (they need the local fault proxy, a changed stack or killing local "
            f"processes); the ones that can run remotely: {', '.join(REMOTE_SAFE_CHAOS)}",
        )


def cleanup_run(target: DeployedTarget, run_id: str) -> dict[str, int]:
    """Delete this run's own prefix: uploads under <input_prefix><run_id>/ and thumbnails under
    <output_prefix><size>/<run_id>/ (every version where the bucket is versioned). Returns deletions per bucket."""
    o = target.outputs
    s3 = target.client("s3", pool=4)
    prefixes = [(o.input_bucket, f"{o.input_prefix}{run_id}/")]
    prefixes += [(o.output_bucket, f"{o.output_prefix}{size}/{run_id}/") for size in o.size_names]
    deleted: dict[str, int] = {}
    for bucket, prefix in prefixes:
        keys: list[dict[str, str]] = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                keys.append({"Key": v["Key"], "VersionId": v["VersionId"]})
        for i in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[i : i + 1000], "Quiet": True})
        deleted[bucket] = deleted.get(bucket, 0) + len(keys)
    return deleted
