"""A chaos session: the chaos stack resolved (deployed if asked or needed), a fault proxy in its function's S3 path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.aws import client
from harness.chaos import storage
from harness.chaos.errors import ChaosError, PipelineUnavailable
from harness.chaos.proxy import FaultProxy
from harness.deployment import read_stack_outputs
from harness.load.observe import PipelineTarget, make_probe
from harness.runtimes import runtimes_dir
from harness.settings import HarnessSettings
from infra.deploy.outputs import StackOutputs

# The chaos stack: short function timeout and visibility timeout (>= the timeout, as AWS requires for a mapping)
# so that redeliveries happen within seconds; scenarios move them further with levers.
CHAOS_STACK = "chaos"
CHAOS_OVERRIDES: dict[str, Any] = {
    "function_timeout_s": 10,
    "visibility_timeout_s": 10,
    "batching_window_s": 1,
    "max_receive_count": 3,
}


def read_outputs(settings: HarnessSettings, stack: str) -> StackOutputs | None:
    """The stack's deploy outputs, None if it has none (an unreadable or outdated file raises a coded InfraError)."""
    return read_stack_outputs(settings, stack)


# The seed replica under chaos keeps its own batching (batch 10, no window) and maxReceiveCount 3; only its 60 s
# timeout and visibility timeout are shortened as ours are, so that its redeliveries also happen within seconds.
SEED_CHAOS_OVERRIDES: dict[str, Any] = {"function_timeout_s": 10, "visibility_timeout_s": 10}


def chaos_overrides(profile: str) -> dict[str, Any]:
    return dict(SEED_CHAOS_OVERRIDES if profile == "seed" else CHAOS_OVERRIDES)


def deploy(
    settings: HarnessSettings, stack: str, overrides: Mapping[str, Any] | None = None, *, profile: str = "default"
) -> StackOutputs:
    """Deploy (or update) the chaos stack of `profile` (default, seed) through the load harness's deployer."""
    from harness.load.runner import deploy_stack

    knobs = chaos_overrides(profile) if overrides is None else dict(overrides)
    return deploy_stack(settings, stack, knobs, profile=profile)


@dataclass
class ChaosSession:
    """A fault proxy in the function's S3 path for the whole session, plus clients and the observation probe."""

    settings: HarnessSettings
    target: PipelineTarget
    stack: str = CHAOS_STACK
    profile: str = "default"  # the stack profile deployed (seed: the seed replica, redeployed as such)
    log: Callable[[str], None] = lambda line: None
    proxy: FaultProxy | None = None
    _stack: ExitStack = field(default_factory=ExitStack)

    def __post_init__(self) -> None:
        storage.require(self.target)
        self.s3 = client("s3", self.settings)
        self.sqs = client("sqs", self.settings)
        self.lam = client("lambda", self.settings)
        self.logs = client("logs", self.settings)
        self.probe = make_probe(self.target, self.settings)

    @property
    def runtimes_dir(self) -> Path:
        return runtimes_dir(self.settings.home)

    def __enter__(self) -> ChaosSession:
        self.proxy = self._stack.enter_context(FaultProxy(self.settings.endpoint))
        # boto3 in the function reads AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL: only S3 goes through the proxy.
        self._stack.enter_context(
            storage.function_env(self.lam, self.target.function_name, {"AWS_ENDPOINT_URL_S3": self.proxy.endpoint})
        )
        self.log(
            f"fault proxy {self.proxy.endpoint} -> {self.settings.endpoint} in {self.target.function_name}'s S3 path"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._stack.close()
        except Exception as error:  # noqa: BLE001 - the emulator may be gone (restart scenario): report, go on
            self.log(f"warning: could not restore the function environment: {error}")

    def refresh(self, outputs: StackOutputs) -> None:
        """After a redeploy: new target, probe and the proxy re-inserted into the new function's S3 path."""
        self.target = PipelineTarget.from_outputs(outputs)
        self.probe = make_probe(self.target, self.settings)
        assert self.proxy is not None
        env = storage.function_environment(self.lam, self.target.function_name)
        env["AWS_ENDPOINT_URL_S3"] = self.proxy.endpoint
        self.lam.update_function_configuration(FunctionName=self.target.function_name, Environment={"Variables": env})
        storage.wait_function_updated(self.lam, self.target.function_name)


def open_session(
    settings: HarnessSettings,
    *,
    stack: str = CHAOS_STACK,
    deploy_stack: bool = True,
    profile: str = "default",
    log: Callable[[str], None] = lambda line: None,
) -> ChaosSession:
    """Resolve (deploying if asked or needed) the chaos stack and return a session (use it as a context manager)."""
    outputs = None if deploy_stack else read_outputs(settings, stack)
    if outputs is None:
        try:
            outputs = deploy(settings, stack, profile=profile)
        except Exception as exc:  # noqa: BLE001 - any deploy failure means no pipeline to break
            raise PipelineUnavailable(
                "PIPELINE_UNAVAILABLE", f"Expected a deployed stack '{stack}' but deploying it failed: {exc}"
            ) from exc
    try:
        target = PipelineTarget.from_outputs(outputs)
    except Exception as exc:  # noqa: BLE001
        raise ChaosError(
            "OUTPUTS_INVALID",
            f"Expected usable deploy outputs for stack '{stack}' but received {outputs}: {exc}",
        ) from exc
    return ChaosSession(settings, target, stack=stack, profile=profile, log=log)
