"""The one polling helper: wait for a predicate with a deadline (no bare sleeps anywhere else)."""

from __future__ import annotations

import time
from collections.abc import Callable

from common.errors import CodedError


class WaitTimeout(CodedError, TimeoutError):
    """A condition did not become true before its deadline (code WAIT_TIMEOUT); carries the last observed value."""

    def __init__(self, what: str, timeout: float, last: object = None) -> None:
        super().__init__("WAIT_TIMEOUT", f"timed out after {timeout:.1f}s waiting for {what} (last observed: {last!r})")
        self.what = what
        self.timeout = timeout
        self.last = last


def wait_until[T](
    predicate: Callable[[], T],
    timeout: float,
    *,
    interval: float = 0.05,
    max_interval: float = 1.0,
    what: str = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call predicate until it returns a truthy value and return that value.

    Polls with a growing interval (interval, x1.5, capped at max_interval) until `timeout` seconds have passed,
    then raises WaitTimeout. Exceptions listed in `ignore` count as "not yet".
    """
    deadline = time.monotonic() + timeout
    delay = interval
    last: object = None
    while True:
        try:
            value = predicate()
        except ignore as exc:
            value = None
            last = exc
        else:
            if value:
                return value
            last = value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(what, timeout, last)
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_interval)
