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
    """Make SQS event-source mappings honour ScalingConfig.MaximumConcurrency (only with our executor selected).

    Also keeps S3 object data inside this emulator's own state folder (see _private_s3_storage).
    """
    _private_s3_storage()
    if (config.LAMBDA_RUNTIME_EXECUTOR or "") != EXECUTOR_NAME:
        return
    from .esm_concurrency import install
    from .executor import sweep_stale_state

    sweep_stale_state()  # folders and records left by a LocalStack that was killed
    install()


def _private_s3_storage() -> None:
    """LocalStack keeps S3 object bytes in a fixed /tmp/localstack-s3-storage shared by every emulator on the host:
    deleting a bucket in one emulator then breaks a same-named bucket in another. Point it at our FILESYSTEM_ROOT
    before the (lazily loaded) S3 provider is created."""
    import os

    root = os.environ.get("FILESYSTEM_ROOT")
    if not root:
        return
    from localstack.services.s3 import provider as s3_provider

    target = os.path.join(root, "s3-storage")
    os.makedirs(target, exist_ok=True)
    s3_provider.DEFAULT_S3_TMP_DIR = target
    LOG.info("S3 object storage: %s", target)
