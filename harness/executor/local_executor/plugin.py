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

    Also keeps S3 object data inside this emulator's own state folder (see _private_s3_storage) and makes the
    default gateway server bind the host of GATEWAY_LISTEN (see _bind_twisted_to_listen_host). Runs before the
    gateway server is created (LocalStack calls on_runtime_start hooks first).
    """
    _private_s3_storage()
    _bind_twisted_to_listen_host()
    _exit_guard()
    from .lean import apply as apply_lean_path

    apply_lean_path()  # HARNESS_LEAN=0: LocalStack's defaults (see lean.py)
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


def _bind_twisted_to_listen_host() -> None:
    """LocalStack's twisted gateway (the fastest of its servers: ~1.6x hypercorn on S3 GETs here) ignores the host of
    GATEWAY_LISTEN for IPv4 and listens on every interface. Give its endpoint factory the configured host, so
    GATEWAY_LISTEN=127.0.0.1:4566 means loopback only."""
    from localstack.runtime.server import twisted as ls_twisted
    from twisted.internet import endpoints as tw_endpoints

    hosts = {hp.port: hp.host for hp in config.GATEWAY_LISTEN}

    class _LoopbackAwareEndpoints:
        TCP6ServerEndpoint = tw_endpoints.TCP6ServerEndpoint

        @staticmethod
        def TCP4ServerEndpoint(reactor, port, backlog=50, interface=""):  # noqa: N802 (twisted's name)
            host = interface or hosts.get(port, "")
            return tw_endpoints.TCP4ServerEndpoint(reactor, port, backlog, "" if host == "0.0.0.0" else host)

    ls_twisted.endpoints = _LoopbackAwareEndpoints


def _exit_guard(grace_s: float = 2.0) -> None:
    """After LocalStack's shutdown completed, make sure the process really exits.

    Seen after long sessions (functions reconfigured, runtimes killed): the main thread finishes its shutdown, then
    Python waits forever for non-daemon threads LocalStack leaves behind (keepalive timers of execution environments
    of deleted versions, SQS's queue-update worker), so a plain SIGTERM never ends the process. This daemon thread
    waits for the runtime's `stopped` event and exits `grace_s` later if the interpreter has not."""
    import os
    import threading

    from localstack.runtime import events

    def guard() -> None:
        events.infra_stopped.wait()
        threading.main_thread().join(timeout=grace_s)  # a normal interpreter exit ends this thread first
        lingering = [t.name for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
        LOG.info("shutdown complete; exiting despite lingering threads: %s", ", ".join(lingering) or "none")
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(0)

    threading.Thread(target=guard, name="harness-exit-guard", daemon=True).start()
