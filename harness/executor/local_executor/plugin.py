"""Entry points LocalStack loads: the `local-process` runtime executor and the start-up hook for ESM concurrency."""

from __future__ import annotations

import logging

from localstack import config
from localstack.runtime import hooks
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin

LOG = logging.getLogger("localstack.harness.local_executor")
EXECUTOR_NAME = "local-process"


class LocalProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = EXECUTOR_NAME

    def load(self, *args, **kwargs):
        from .executor import LocalProcessRuntimeExecutor

        return LocalProcessRuntimeExecutor


@hooks.on_infra_start()
def harness_esm_concurrency() -> None:
    """Make SQS event-source mappings honour ScalingConfig.MaximumConcurrency (only with our executor selected)."""
    if (config.LAMBDA_RUNTIME_EXECUTOR or "") != EXECUTOR_NAME:
        return
    from .esm_concurrency import install
    from .executor import sweep_stale_state

    sweep_stale_state()  # folders and records left by a LocalStack that was killed
    install()
