"""Actions fired from the fault proxy's exchange stream: a callback's lifetime, and the mid-batch trigger."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from harness.chaos.proxy import Exchange, FaultProxy
from harness.load.observe import PipelineTarget


@contextmanager
def on_exchange(proxy: FaultProxy, callback: Callable[[Exchange], None]) -> Iterator[None]:
    """`callback` sees every exchange the proxy forwards while the block runs."""
    proxy.on_exchange.append(callback)
    try:
        yield
    finally:
        proxy.on_exchange.remove(callback)


class MidBatchTrigger:
    """Fires `action` once, on the first source read that follows a complete upload of this run and passes `gate`
    (given the number of complete uploads; used to require that a complete record is still in the in-flight batch,
    so the kill provably returns finished work)."""

    def __init__(
        self,
        target: PipelineTarget,
        run_id: str,
        action: Callable[[], str],
        gate: Callable[[int], bool] = lambda completed: True,
        *,
        after_completed: bool = True,
    ) -> None:
        self._sources = target.run_prefix(run_id)
        self._outputs = target.run_output_prefixes(run_id)
        self._sizes = len(target.sizes)
        self._written: dict[str, int] = {}
        self._action = action
        self._gate = gate
        self._after_completed = after_completed  # False: the first source read of the run will do
        self._lock = threading.Lock()
        self.fired = threading.Event()
        self.result = ""

    def __call__(self, e: Exchange) -> None:
        with self._lock:
            if self.fired.is_set():
                return
            if e.method == "PUT" and 200 <= e.status < 300 and e.key.startswith(self._outputs):
                stem = e.key.split("/", 2)[-1]
                self._written[stem] = self._written.get(stem, 0) + 1
                return
            completed = sum(1 for n in self._written.values() if n >= self._sizes)
            ready = completed or not self._after_completed
            if ready and e.method == "GET" and e.key.startswith(self._sources) and self._gate(completed):
                self.fired.set()
                self.result = self._action()
