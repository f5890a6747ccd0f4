"""The lean path's changes to twisted's HTTP serving (applied by lean.apply, HARNESS_LEAN=1).

- gathered socket writes: twisted joins its pending buffers (the header lines and the body) into one bytes object
  before each send, and copies what a partial send left over again before the next one: a 2 MB S3 GET paid a 2 MB
  join per request. Here the pending buffers go to the kernel as they are, in one sendmsg (writev); below
  GATHER_MIN bytes pending, twisted's own doWrite runs unchanged.
- one reactor call for a whole-body response: twisted's WSGI response writes each body chunk with a blocking call
  into the reactor thread and then finishes the request with a second call. When the first chunk is the whole
  body (its length is the response's Content-Length), it is written together with the finish in one call, and the
  WSGI thread does not wait for it. Anything else (streamed bodies, bodies of several chunks, no Content-Length)
  takes twisted's path chunk by chunk, as before.
- per-connection facts asked per request, kept on the connection: whether it is TLS (rolo's channel asks its
  transport, catches the AttributeError, then asks twisted, which adapts to ISSLTransport: ~5% of the reactor's
  samples of a GET in py-spy) and the local address (a getsockname syscall). A connection's TLS is settled by
  LocalStack's TLSMultiplexer before the HTTP channel is connected, and an accepted socket's address never changes.

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


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if len(name) == 14 and name.lower() == "content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def coalescing_run(self: Any) -> None:
    """twisted's _WSGIResponse.run, with a whole-body first chunk written together with the finish."""
    from sys import exc_info

    from twisted.python.failure import Failure
    from twisted.web.http import INTERNAL_SERVER_ERROR

    held: bytes | None = None
    try:
        app_iterator = self.application(self.environ, self.startResponse)
        for elem in app_iterator:
            if elem:
                if held is not None:
                    self.write(held)
                    held = None
                if not self.started and _content_length(self.headers) == len(elem):
                    held = elem
                else:
                    self.write(elem)
            if self._requestFinished:
                break
        close = getattr(app_iterator, "close", None)
        if close is not None:
            close()
    except BaseException:

        def wsgi_error(started: bool, held: bytes | None, type_: Any, value: Any, traceback: Any) -> None:
            self._log.failure("WSGI application error", failure=Failure(value, type_, traceback))
            if held is not None and not self._requestFinished:  # what twisted would have written by now
                self._sendResponseHeaders()
                self.request.write(held)
                started = True
            if started:
                self.request.loseConnection()
            else:
                self.request.setResponseCode(INTERNAL_SERVER_ERROR)
                self.request.finish()

        self.reactor.callFromThread(wsgi_error, self.started, held, *exc_info())
    else:

        def wsgi_finish(started: bool, held: bytes | None) -> None:
            if not self._requestFinished:
                if not started:
                    self._sendResponseHeaders()
                if held is not None:
                    self.request.write(held)
                self.request.finish()

        self.reactor.callFromThread(wsgi_finish, self.started, held)
    self.started = True


def _per_connection_facts() -> None:
    from rolo.serving.twisted import HeaderPreservingHTTPChannel
    from twisted.internet import tcp

    is_secure = HeaderPreservingHTTPChannel.isSecure

    def isSecure(self: Any) -> bool:  # noqa: N802 - twisted's method name
        try:
            return self._lean_is_secure  # type: ignore[no-any-return]
        except AttributeError:
            self._lean_is_secure = value = is_secure(self)
            return value  # type: ignore[no-any-return]

    get_host = tcp.Server.getHost

    def getHost(self: Any) -> Any:  # noqa: N802
        try:
            return self._lean_host
        except AttributeError:
            self._lean_host = host = get_host(self)
            return host

    HeaderPreservingHTTPChannel.isSecure = isSecure  # type: ignore[method-assign]
    tcp.Server.getHost = getHost  # type: ignore[method-assign]


def apply() -> list[str]:
    """Install both changes in twisted's classes; returns what was changed."""
    from rolo.serving.twisted import HeaderPreservingWSGIResponse
    from twisted.internet import abstract, tcp

    tcp.Connection.doWrite = gathered_doWrite(abstract.FileDescriptor.doWrite)  # type: ignore[method-assign]
    HeaderPreservingWSGIResponse.run = coalescing_run  # type: ignore[method-assign]
    _per_connection_facts()
    return [
        f"socket writes of {GATHER_MIN}+ bytes gathered (sendmsg), not joined",
        "a whole-body response written with its finish in one reactor call",
        "a connection's TLS flag and local address looked up once per connection",
    ]
