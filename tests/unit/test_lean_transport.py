"""The lean path's gathered socket writes (harness/executor/local_executor/lean_transport.py) send every pending byte,
in order, whatever the kernel takes per call; run in the emulator venv, where twisted is."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from common.paths import ROOT
from harness.paths import EMULATOR_VENV

PY = EMULATOR_VENV / "bin" / "python"

SCRIPT = textwrap.dedent(
    """
    import errno, random, sys
    sys.path.insert(0, sys.argv[1])
    from twisted.internet import abstract
    from local_executor import lean_transport as lt

    class Sock:
        def __init__(self, limits):
            self.limits, self.out, self.calls = limits, bytearray(), []
        def _take(self, data):
            n = self.limits.pop(0) if self.limits else len(data)
            if n < 0:
                raise BlockingIOError(errno.EAGAIN, "would block")
            return min(n, len(data))
        def sendmsg(self, iov):
            data = b"".join(bytes(b) for b in iov)
            n = self._take(data); self.out += data[:n]; self.calls.append(("sendmsg", len(iov), n)); return n
        def send(self, data):
            data = bytes(data); n = self._take(data); self.out += data[:n]; self.calls.append(("send", 1, n)); return n

    class Conn:  # the attributes twisted's doWrite and ours use
        SEND_LIMIT = 4 * 1024 * 1024
        producer = None; disconnecting = False; _writeDisconnecting = False
        def __init__(self, sock):
            self.socket, self.dataBuffer, self.offset, self._tempDataBuffer, self._tempDataLen = sock, b"", 0, [], 0
            self.writing = True
        def write(self, data):
            self._tempDataBuffer.append(data); self._tempDataLen += len(data); self.writing = True
        def writeSomeData(self, data):
            try:
                return self.socket.send(memoryview(data)[: self.SEND_LIMIT])
            except BlockingIOError:
                return 0
        def stopWriting(self):
            self.writing = False

    do_write = lt.gathered_doWrite(abstract.FileDescriptor.doWrite)
    rnd = random.Random(7)
    for case in range(300):
        chunks = [rnd.randbytes(rnd.choice([0, 1, 17, 900, 70_000, 2_100_000])) for _ in range(rnd.randint(1, 20))]
        limits = [rnd.choice([-1, 0, 1, 1000, 65_536, 300_000, 10**9]) for _ in range(400)]
        sock = Sock(limits); conn = Conn(sock)
        first, rest = chunks[: len(chunks) // 2], chunks[len(chunks) // 2 :]
        for c in first:
            if c: conn.write(c)
        steps = 0
        while conn.writing or rest:
            if rest and (steps == 3 or not conn.writing):  # more written mid-way (or after the buffer drained)
                for c in rest:
                    if c: conn.write(c)
                rest = []
            if conn.writing:
                assert do_write(conn) is None
            steps += 1
            assert steps < 10_000, "no progress"
        assert bytes(sock.out) == b"".join(chunks), case
        assert conn.dataBuffer == b"" and conn._tempDataBuffer == [] and conn._tempDataLen == 0, case

    # a 2 MB body behind header lines: one sendmsg of everything, no join
    sock = Sock([]); conn = Conn(sock)
    conn._tempDataBuffer = [b"HTTP/1.1 200 OK\\r\\n", b"Content-Length: 2097152\\r\\n", b"\\r\\n", bytes(2097152)]
    conn._tempDataLen = sum(map(len, conn._tempDataBuffer))
    do_write(conn)
    assert sock.calls == [("sendmsg", 4, 17 + 25 + 2 + 2097152)] and not conn.writing, sock.calls
    print("ok")
    """
)


@pytest.mark.skipif(not PY.exists(), reason=f"{PY} is missing (make emulator-venv)")
def test_gathered_writes_send_every_byte_in_order() -> None:
    proc = subprocess.run(
        [str(PY), "-c", SCRIPT, str(ROOT / "harness" / "executor")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
