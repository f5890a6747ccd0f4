"""Emulator state across restarts: save the IAM, S3, SQS, Lambda and Logs stores on shutdown, load them on start-up.

LocalStack's core keeps its state-visitor API (`localstack.state`) but ships no persistence. These two hooks use it:
on shutdown (before the services stop) every running service's state containers (AccountRegionBundle stores, moto
BackendDicts) are pickled with `localstack.state.pickle` (dill), and the S3 object bytes, which LocalStack keeps in
spooled temporary files that vanish with the process, are copied out. On start-up (before the gateway serves, so the
health check answers only once the state is back) the services are started, the stores are put back in place, the
bytes rewritten into the S3 object store, and each provider's `on_after_state_load` runs: Lambda recreates its
function versions and the event source mappings' pollers (the load then waits, with a deadline, until every
restored function version has left Pending: LocalStack itself waits only 5 s per version and logs "Failed to restore
function version" when a runtime starts slower than that on a busy machine, although the start goes on and
succeeds; the wait keeps the health check at 503 until the functions are Active again). SQS messages that were in
flight keep their visibility deadline (absolute time), so they become visible again once it passes, as on AWS.

Files: <HARNESS_HOME>/persist/{<service>.pickle, s3-objects/, manifest.json}. HARNESS_PERSIST=0 turns both hooks off.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from localstack.runtime import hooks

LOG = logging.getLogger("localstack.harness.persistence")
# load order: iam first (the functions' roles), lambda after s3/sqs (its mappings poll SQS, its code is in S3);
# ssm and cloudformation too when they run (`make deploy-cdk-local`): the CDKToolkit bootstrap stack, its version
# parameter and the app's stacks must survive with the roles they created, or the next `cdk bootstrap` fails on roles
# that exist without their stack (EntityAlreadyExists)
SERVICES = ("iam", "ssm", "s3", "sqs", "logs", "lambda", "cloudformation")
VERSION_START_TIMEOUT_S = 120.0  # restored function versions still Pending after this are reported as an error
SCHEMA = 1


def state_dir(env: dict[str, str] | os._Environ[str] | None = None) -> Path | None:
    """The persistence folder, or None when persistence is off (HARNESS_PERSIST=0) or there is no HARNESS_HOME."""
    env = os.environ if env is None else env
    if (env.get("HARNESS_PERSIST") or "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    home = env.get("HARNESS_HOME")
    return Path(home) / "persist" if home else None


# ---- locks: recreated unlocked ------------------------------------------------------------------------------------
# dill re-acquires an unpickled RLock for its saved owner, even an unlocked one (count 0, owner 0), so every store
# lock would come back held by nobody and deadlock the first request. Locks and conditions carry no state worth
# keeping across processes: they are recreated fresh.
def _new_lock() -> Any:
    return threading.Lock()


def _new_rlock() -> Any:
    return threading.RLock()


def _new_condition(lock: Any) -> Any:
    return threading.Condition(lock)  # the same (recreated) lock: SQS queues share one between mutex and condition


def _register_lock_reducers() -> None:
    from localstack.state.pickle import add_dispatch_entry

    add_dispatch_entry(type(threading.Lock()), lambda pickler, obj: pickler.save_reduce(_new_lock, (), obj=obj))
    add_dispatch_entry(type(threading.RLock()), lambda pickler, obj: pickler.save_reduce(_new_rlock, (), obj=obj))
    add_dispatch_entry(
        threading.Condition,
        lambda pickler, obj: pickler.save_reduce(_new_condition, (obj._lock,), obj=obj),
        subclasses=True,
    )
    try:  # moto's SSM parameters: a defaultdict whose __init__ needs (account_id, region_name), so the default
        # reduce (no arguments) cannot rebuild it
        from moto.ssm.models import ParameterDict
    except ImportError:  # pragma: no cover - moto without ssm
        return
    add_dispatch_entry(
        ParameterDict,
        lambda pickler, obj: pickler.save_reduce(
            type(obj),
            (obj.account_id, obj.region_name),
            state=dict(obj.__dict__),
            dictitems=iter(dict.items(obj)),
            obj=obj,
        ),
    )


# ---- state containers of a service ------------------------------------------------------------------------------
class _Collector:
    """A StateVisitor that keeps the AccountRegionBundles and moto BackendDicts a provider shows it."""

    def __init__(self) -> None:
        self.containers: list[Any] = []

    def visit(self, container: Any) -> None:
        from localstack.state import AssetDirectory

        if not isinstance(container, AssetDirectory):  # S3's object folder: its bytes are saved separately
            self.containers.append(container)


def _service(name: str) -> Any:
    from localstack.services.plugins import SERVICE_PLUGINS

    return SERVICE_PLUGINS.get_service(name)


def _running(name: str) -> bool:
    from localstack.services.plugins import SERVICE_PLUGINS, ServiceState

    return SERVICE_PLUGINS.get_state(name) == ServiceState.RUNNING


def _hook(provider: Any, name: str) -> None:
    """Call a provider's state lifecycle hook; some providers (ssm) are not lifecycle hooks and have none."""
    method = getattr(provider, name, None) if provider is not None else None
    if method is not None:
        method()


def _containers(service: Any) -> list[Any]:
    collector = _Collector()
    service.accept_state_visitor(collector)
    return collector.containers


def _restore_container(live: Any, loaded: Any) -> None:
    """Put a loaded container's content into the live one (providers hold references to the live objects)."""
    from localstack.services.stores import AccountRegionBundle

    if isinstance(live, AccountRegionBundle):
        with live.lock:
            dict.clear(live)
            live._universal.clear()
            live._universal.update(loaded._universal)
            for account_id, regions in dict.items(loaded):
                regions._universal = live._universal  # cross-account attributes are shared with the live bundle
                regions.lock = threading.RLock()
                dict.__setitem__(live, account_id, regions)
        return
    live.clear()  # moto BackendDict: account -> region -> backend
    live.update(loaded)


# ---- S3 object bytes --------------------------------------------------------------------------------------------
def _s3_objects() -> list[tuple[str, Any]]:
    from localstack.services.s3.models import S3DeleteMarker, s3_stores

    seen: set[str] = set()
    out: list[tuple[str, Any]] = []
    for _account, _region, store in s3_stores.iter_stores():
        for name, bucket in dict(store.buckets).items():
            if name in seen:
                continue
            seen.add(name)
            try:
                versions = bucket.objects.values(with_versions=True)
            except TypeError:
                versions = bucket.objects.values()
            out += [(name, o) for o in versions if not isinstance(o, S3DeleteMarker)]
    return out


def _save_s3_bytes(provider: Any, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for n, (bucket, obj) in enumerate(_s3_objects()):
        path = folder / f"{n}.bin"
        with provider._storage_backend.open(bucket, obj, mode="r") as stored, open(path, "wb") as out:
            while chunk := stored.read(1 << 20):
                out.write(chunk)
        index.append({"bucket": bucket, "key": obj.key, "version_id": obj.version_id, "file": path.name})
    (folder / "index.json").write_text(json.dumps(index))
    return len(index)


def _load_s3_bytes(provider: Any, folder: Path) -> int:
    index_file = folder / "index.json"
    if not index_file.exists():
        return 0
    wanted = {(e["bucket"], e["key"], e["version_id"]): e["file"] for e in json.loads(index_file.read_text())}
    restored = 0
    for bucket, obj in _s3_objects():
        name = wanted.get((bucket, obj.key, obj.version_id))
        if name is None:
            continue
        etag, checksum, modified = obj.etag, getattr(obj, "checksum_value", None), obj.internal_last_modified
        with open(folder / name, "rb") as data, provider._storage_backend.open(bucket, obj, mode="w") as stored:
            stored.write(data)
        obj.etag = etag  # write() recomputes the MD5: a multipart ETag ("...-N") must stay what it was
        if checksum is not None:
            obj.checksum_value = checksum
        obj.internal_last_modified = stored.file.internal_last_modified = modified
        restored += 1
    return restored


# ---- save / load ------------------------------------------------------------------------------------------------
SAVING_MARKER = ".saving"  # present while a save runs: `harness.emulator.stop` waits for it before SIGKILL


def save(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Pickle every running service's stores (and S3's bytes) into `folder`; returns the manifest. Services in
    `skip` (their restore failed) keep their previous save.

    Two phases: everything is written beside the previous save first (`*.tmp`), then swapped in at once with the
    manifest, so a save cut short (a stop that could not wait) leaves the previous save whole, never a mix of the two.
    """
    from localstack.state import pickle

    _register_lock_reducers()
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / SAVING_MARKER
    marker.write_text(json.dumps({"pid": os.getpid(), "started_at": time.time()}))
    t0 = time.monotonic()
    manifest: dict[str, Any] = {"schema": SCHEMA, "saved_at": time.time(), "services": {}}
    previous = _manifest(folder)
    swaps: list[tuple[Path, Path]] = []  # (written, final name): renamed once every service is written
    for name in SERVICES:
        if name in skip or not _running(name):
            if name in previous.get("services", {}):
                manifest["services"][name] = previous["services"][name]  # not started this run: keep its file
            continue
        service = _service(name)
        provider = getattr(service, "_provider", None)
        try:
            _hook(provider, "on_before_state_save")
            entry: dict[str, Any] = {}
            if name == "s3" and provider is not None:
                tmp = folder / "s3-objects.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                entry["objects"] = _save_s3_bytes(provider, tmp)
            target = folder / f"{name}.pickle"
            with open(target.with_suffix(".tmp"), "wb") as out:
                pickle.dump(_containers(service), out)
            entry["bytes"] = target.with_suffix(".tmp").stat().st_size
            if name == "s3" and provider is not None:
                swaps.append((folder / "s3-objects.tmp", folder / "s3-objects"))
            swaps.append((target.with_suffix(".tmp"), target))
            manifest["services"][name] = entry
            _hook(provider, "on_after_state_save")
        except Exception:
            LOG.exception("could not save the state of %s (its previous save, if any, is kept)", name)
            if name in previous.get("services", {}):
                manifest["services"][name] = previous["services"][name]
    for written, final in swaps:
        if written.is_dir():
            shutil.rmtree(final, ignore_errors=True)
        written.replace(final)
    manifest["save_s"] = round(time.monotonic() - t0, 3)
    (folder / "manifest.json.tmp").write_text(json.dumps(manifest, indent=1))
    (folder / "manifest.json.tmp").replace(folder / "manifest.json")
    marker.unlink(missing_ok=True)
    return manifest


# Set while a saved state is being restored: the health endpoint answers 503 until it is back, and nothing is saved.
RESTORING = threading.Event()
_FAILED: list[str] = []  # services whose restore failed: their previous save is kept, never overwritten
_DEFERRED: list[tuple[str, Any, dict[str, Any], float]] = []  # (service, provider, report entry, started)


def load(folder: Path, *, defer_lambda: bool = False) -> dict[str, Any]:
    """Start the saved services and put their state back; returns what was restored (also in last-load.json).

    With `defer_lambda`, Lambda's stores are put back but its `on_after_state_load` (which downloads the functions'
    code from S3 through the gateway and starts the mappings' pollers) waits for `finish_load()`, once the gateway
    serves."""
    from localstack.services.plugins import SERVICE_PLUGINS
    from localstack.state import pickle

    manifest = _manifest(folder)
    report: dict[str, Any] = {"loaded_at": time.time(), "services": {}}
    t0 = time.monotonic()
    for name in SERVICES:
        if name not in manifest.get("services", {}) or not (folder / f"{name}.pickle").exists():
            continue
        t1 = time.monotonic()
        try:
            service = SERVICE_PLUGINS.require(name)
            provider = getattr(service, "_provider", None)
            with open(folder / f"{name}.pickle", "rb") as data:
                loaded = pickle.load(data)
            _hook(provider, "on_before_state_load")
            live = _containers(service)
            for live_container, loaded_container in zip(live, loaded, strict=True):
                _restore_container(live_container, loaded_container)
            entry: dict[str, Any] = {}
            if name == "s3" and provider is not None:
                entry["objects"] = _load_s3_bytes(provider, folder / "s3-objects")
            report["services"][name] = entry
            if provider is not None and defer_lambda and name == "lambda":
                _DEFERRED.append((name, provider, entry, t1))
                continue
            _hook(provider, "on_after_state_load")
            entry["s"] = round(time.monotonic() - t1, 3)
        except Exception as exc:
            LOG.exception("could not load the saved state of %s", name)
            _FAILED.append(name)
            report["services"][name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    report["load_s"] = round(time.monotonic() - t0, 3)
    _write_report(folder, report)
    return report


def finish_load(folder: Path, report: dict[str, Any]) -> None:
    """Run the deferred `on_after_state_load` calls (Lambda: function versions, mappings) now the gateway serves."""
    t0 = time.monotonic()
    while _DEFERRED:
        name, provider, entry, started = _DEFERRED.pop(0)
        try:
            if name == "lambda":
                dropped = drop_orphan_mappings()
                if dropped:
                    entry["orphan_mappings_dropped"] = dropped
            provider.on_after_state_load()
            if name == "lambda":
                entry["functions"] = _await_function_versions(VERSION_START_TIMEOUT_S)
            entry["s"] = round(time.monotonic() - started, 3)
        except Exception as exc:
            LOG.exception("could not restore %s after loading its state", name)
            _FAILED.append(name)
            entry["error"] = f"{type(exc).__name__}: {exc}"[:500]
    report["load_s"] = round(report.get("load_s", 0.0) + time.monotonic() - t0, 3)
    _write_report(folder, report)


def drop_orphan_mappings() -> list[str]:
    """Remove the saved event-source mappings whose function no longer exists; their UUIDs.

    LocalStack leaves a mapping in its store when it is deleted while disabled, or disabled, enabled and deleted in
    quick succession (its worker's loop, which removes the entry, is not running or sees the old Enabled flag), and
    its `on_after_state_load` then raises on the first such mapping (`Function not found`) and restores no mapping
    and no function runtime at all. A mapping of a deleted function cannot deliver anything: dropped, and said."""
    from localstack.services.lambda_.invocation.models import lambda_stores

    dropped: list[str] = []
    for _account, _region, store in lambda_stores.iter_stores():
        for uuid, esm in list(store.event_source_mappings.items()):
            arn = str(esm.get("FunctionArn") or "")
            parts = arn.split(":")
            name = parts[6] if len(parts) > 6 and parts[5] == "function" else ""
            if name and name in store.functions:
                continue
            store.event_source_mappings.pop(uuid, None)
            dropped.append(uuid)
            LOG.warning("dropped saved event-source mapping %s: its function %s no longer exists", uuid, arn or "?")
    return dropped


def _version_states() -> dict[str, str]:
    """qualified ARN -> state of every function version in Lambda's stores."""
    from localstack.services.lambda_.invocation.models import lambda_stores

    states: dict[str, str] = {}
    for _account, _region, store in lambda_stores.iter_stores():
        for fn in list(store.functions.values()):
            for version in list(fn.versions.values()):
                states[version.id.qualified_arn()] = str(getattr(version.config.state.state, "value", "?"))
    return states


def _await_function_versions(timeout_s: float) -> dict[str, str]:
    """Wait until no restored function version is Pending (their runtimes started); returns ARN -> final state.
    Raises TimeoutError (reported as the restore's error) when some are still Pending at the deadline."""
    deadline = time.monotonic() + timeout_s
    t0 = time.monotonic()
    while True:
        states = _version_states()
        pending = sorted(arn for arn, state in states.items() if state == "Pending")
        if not pending:
            LOG.info("restored function versions started in %.2fs: %s", time.monotonic() - t0, states)
            return states
        if time.monotonic() >= deadline:
            raise TimeoutError(f"function versions still Pending {timeout_s:.0f}s after the restore: {pending}")
        time.sleep(0.2)


def _write_report(folder: Path, report: dict[str, Any]) -> None:
    (folder / "last-load.json").write_text(json.dumps(report, indent=1))


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        doc = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) and doc.get("schema") == SCHEMA else {}


# ---- LocalStack hooks -------------------------------------------------------------------------------------------
_REPORT: dict[str, Any] = {}


def _hold_health_while_restoring() -> None:
    """/_localstack/health answers 503 while the state is restored: `harness up` waits for it, instead of deploying
    into a half-restored emulator."""
    from localstack.http import Response
    from localstack.services.internal import HealthResource

    original = HealthResource.on_get

    def on_get(self: Any, request: Any) -> Any:
        if RESTORING.is_set():
            return Response("restoring saved state", 503)
        return original(self, request)

    HealthResource.on_get = on_get  # type: ignore[method-assign]


@hooks.on_infra_start(priority=-50)  # after harness_esm_concurrency (0): the mappings it patches are then restored
def harness_load_state() -> None:
    folder = state_dir()
    if folder is None or not (folder / "manifest.json").exists():
        return
    marker = folder / SAVING_MARKER
    if marker.exists():  # the last stop did not let its save finish: the previous save is whole and is restored
        saved_at = _manifest(folder).get("saved_at")
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(saved_at)) if saved_at else "?"
        LOG.warning(
            "the last save into %s did not finish (the emulator was killed while saving): restoring the save of %s; "
            "changes made after it are lost",
            folder,
            when,
        )
        marker.unlink(missing_ok=True)
    RESTORING.set()
    _hold_health_while_restoring()
    _REPORT.update(load(folder, defer_lambda=True))
    LOG.info("stores restored from %s in %.2fs: %s", folder, _REPORT["load_s"], _REPORT["services"])


@hooks.on_infra_ready()
def harness_finish_load_state() -> None:
    folder = state_dir()
    if folder is None or not RESTORING.is_set():
        return
    try:
        finish_load(folder, _REPORT)
        LOG.info("state restored from %s in %.2fs: %s", folder, _REPORT["load_s"], _REPORT["services"])
    finally:
        RESTORING.clear()


@hooks.on_infra_shutdown(priority=100)  # before the services stop (shutdown_services runs at -10)
def harness_save_state() -> None:
    folder = state_dir()
    if folder is None:
        return
    if RESTORING.is_set():
        LOG.warning("stopped while restoring: the saved state in %s is kept as it was", folder)
        return
    manifest = save(folder, skip=tuple(_FAILED))
    LOG.info("state saved to %s in %.2fs: %s", folder, manifest["save_s"], manifest["services"])
