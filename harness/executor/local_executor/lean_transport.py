"""The lean path's changes to how twisted hands a response to the socket (applied by lean.apply, HARNESS_LEAN=1).

- gathered socket writes: twisted joins its pending buffers (the header lines and the body) into one bytes object
  before each send, and copies what a partial send left over again before the next one: a 2 MB S3 GET paid a 2 MB
  join per request. Here the pending buffers go to the kernel as they are, in one sendmsg (writev); below
  GATHER_MIN bytes pending, twisted's own doWrite runs unchanged.

The bytes on the wire are the same: same headers, same body, same order.
"""

from __future__ import annotations

from typing import Any

GATHER_MIN = 64 * 1024  # bytes pending below which twisted's doWrite (join + send) runs as it is
IOV_MAX = 512  # buffers per sendmsg (Linux takes up to 1024)


def gathered_doWrite(original: Any) -> Any:  # noqa: N802 - twisted's method name
    """A doWrite for twisted's tcp.Connection that sends the pending buffers without joining them."""
    from twisted.internet import main
    from twisted.internet.tcp import ENOBUFS, EWOULDBLOCK
    from twisted.python.util import untilConcludes

    def doWrite(self: Any) -> Any:  # noqa: N802
        left = len(self.dataBuffer) - self.offset
        if left + self._tempDataLen < GATHER_MIN:
            return original(self)
        queued = self._tempDataBuffer
        iov = [memoryview(self.dataBuffer)[self.offset :]] if left else []
        iov += queued[:IOV_MAX]
        try:
            sent = untilConcludes(self.socket.sendmsg, iov)
        except OSError as exc:
            if exc.args[0] in (EWOULDBLOCK, ENOBUFS):
                return None
            return main.CONNECTION_LOST
        if left:
            if sent < left:
                self.offset += sent
                return None
            sent -= left
        self.dataBuffer, self.offset = b"", 0
        used = moved = 0
        for item in queued[:IOV_MAX]:
            if sent < len(item):
                if sent:  # a partial item becomes the send-immediately buffer, at its offset (no copy)
                    self.dataBuffer, self.offset = item, sent
                    used, moved = used + 1, moved + len(item)
                break
            sent -= len(item)
            used, moved = used + 1, moved + len(item)
        del queued[:used]
        self._tempDataLen -= moved
        if self.dataBuffer or self._tempDataLen:
            return None
        # all sent: what twisted's doWrite does then
        self.stopWriting()
        if self.producer is not None and ((not self.streamingProducer) or self.producerPaused):
            self.producerPaused = False
            self.producer.resumeProducing()
        elif self.disconnecting:
            return self._postLoseConnection()
        elif self._writeDisconnecting:
            self._writeDisconnected = True
            return self._closeWriteConnection()
        return None

    return doWrite


def apply() -> list[str]:
    """Install the change in twisted's classes; returns what was changed."""
    from twisted.internet import abstract, tcp

    tcp.Connection.doWrite = gathered_doWrite(abstract.FileDescriptor.doWrite)  # type: ignore[method-assign]
    return [
        f"socket writes of {GATHER_MIN}+ bytes gathered (sendmsg), not joined",
    ]
