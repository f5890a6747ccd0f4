"""Failure classification: whatever decoding raises is permanent (DLQ on the first receive); storage errors retry."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image, JpegImagePlugin

from tests.unit.test_handler import BUCKET, FakeDlq, FakeStore, jpeg, log_lines, make_app, s3_body, sqs_record
from thumbnailer.app import Thumbnailer
from thumbnailer.errors import (
    CorruptImage,
    ErrorCode,
    PermanentError,
    ResourceExhausted,
    RetryableError,
    decode_failure,
    decode_guard,
    exception_type,
)
from thumbnailer.pipeline import describe
from thumbnailer.resizers import ResizeSpec, get_resizer
from thumbnailer.resizers.base import Limits, ResizeResult, SourceInfo

KEY = "uploads/hostile/x.jpg"


def _handle_one(app: Thumbnailer, key: str = KEY, receive_count: int = 1) -> dict[str, Any]:
    return dict(app.handle({"Records": [sqs_record(s3_body(key), "m1", receive_count=receive_count)]}))


def _struct_error() -> struct.error:
    try:
        struct.unpack(">H", b"\x00")
    except struct.error as exc:
        return exc
    raise AssertionError("struct.unpack accepted a short buffer")


# ---- the guard itself --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "type_name"),
    [
        (IndexError("list index out of range"), "IndexError"),
        (_struct_error(), "struct.error"),
        (zlib.error("Error -3 while decompressing data: invalid distance too far back"), "zlib.error"),
        (SyntaxError("not a TIFF file"), "SyntaxError"),
        (OSError("broken data stream when reading image file"), "OSError"),
        (ValueError("tile cannot extend outside image"), "ValueError"),
        (RuntimeError("Failed to decode frame 0"), "RuntimeError"),
        (KeyError("transparency"), "KeyError"),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError"),
    ],
)
def test_any_exception_while_decoding_is_permanent_corrupt_image_with_its_type(exc: Exception, type_name: str) -> None:
    with pytest.raises(CorruptImage) as info, decode_guard("gif", "Pillow"):
        raise exc
    err = info.value
    assert err.code == ErrorCode.CORRUPT_IMAGE and not err.retryable
    assert err.__cause__ is exc  # chained to the original
    assert f"raised {type_name}: " in err.message and err.message.startswith("Expected a decodable GIF ")
    assert exception_type(exc) == type_name and err.details["cause"] == type_name


def test_memory_error_while_decoding_stays_retryable_as_resource_exhausted() -> None:
    with pytest.raises(ResourceExhausted) as info, decode_guard("png"):
        raise MemoryError()
    assert info.value.retryable and info.value.code == ErrorCode.RESOURCE_EXHAUSTED
    assert "MemoryError" in info.value.message
    assert describe(MemoryError()) == ("RESOURCE_EXHAUSTED", "MemoryError: ")


def test_our_own_errors_pass_through_the_guard_unchanged() -> None:
    original = RetryableError("a retryable error of ours")
    assert decode_failure(original, "jpeg") is original
    with pytest.raises(RetryableError) as info, decode_guard("jpeg"):
        raise original
    assert info.value is original


def test_keyboard_interrupt_is_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt), decode_guard("jpeg"):
        raise KeyboardInterrupt


# ---- inside the real backends ------------------------------------------------------------------------------------
def _break_pillow_decode(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    """Make Pillow's JPEG plugin raise `exc` from inside its decode (load), as a damaged file would."""

    def load(self: Any) -> Any:
        raise exc

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", load)


def _break_vips_decode(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    """Make libvips' loader raise `exc` (after really reading the header), as a damaged file would."""
    pyvips = pytest.importorskip("pyvips")
    real = pyvips.Image.new_from_source  # the resizer reads its input in place from a memory source

    def new_from_source(source: Any, options: str, **kwargs: Any) -> Any:
        real(source, options, **kwargs)
        raise exc

    monkeypatch.setattr(pyvips.Image, "new_from_source", staticmethod(new_from_source))


BREAKERS: dict[str, Callable[[pytest.MonkeyPatch, Exception], None]] = {
    "pillow": _break_pillow_decode,
    "vips": _break_vips_decode,
}


@pytest.mark.parametrize("backend", ["pillow", pytest.param("vips", marks=pytest.mark.vips)])
@pytest.mark.parametrize(
    "exc", [IndexError("list index out of range"), _struct_error()], ids=["IndexError", "struct.error"]
)
def test_an_exception_inside_a_backends_decode_is_permanent(
    backend: str, exc: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    BREAKERS[backend](monkeypatch, exc)
    resizer = get_resizer(backend)
    with pytest.raises(PermanentError) as info:
        resizer.resize(jpeg(), ResizeSpec())
    assert info.value.code == ErrorCode.CORRUPT_IMAGE and info.value.__cause__ is exc
    assert exception_type(exc) in info.value.message and "JPEG" in info.value.message


@pytest.mark.parametrize("backend", ["pillow", pytest.param("vips", marks=pytest.mark.vips)])
def test_an_exception_while_probing_the_header_is_permanent(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    exc = _struct_error()
    if backend == "pillow":

        def open_(*args: Any, **kwargs: Any) -> Any:
            raise exc

        monkeypatch.setattr(Image, "open", open_)
    else:
        _break_vips_decode(monkeypatch, exc)
    with pytest.raises(PermanentError) as info:
        get_resizer(backend).probe(jpeg(), Limits())
    assert info.value.code == ErrorCode.CORRUPT_IMAGE and "struct.error" in info.value.message


def _avif_with_zeroed_payload() -> bytes:
    """A real AVIF whose coded data (mdat) is zeroed: Pillow's AVIF plugin raises RuntimeError on it."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 40)).save(buf, "AVIF", quality=60, speed=10)
    data = buf.getvalue()
    at = data.index(b"mdat")
    (size,) = struct.unpack(">I", data[at - 4 : at])
    return data[: at + 4] + bytes(size - 8) + data[at - 4 + size :]


@pytest.mark.parametrize("backend", ["pillow", pytest.param("vips", marks=pytest.mark.vips)])
def test_real_bytes_that_made_a_decoder_raise_an_unlisted_type_are_corrupt_image(backend: str) -> None:
    # before the guard, Pillow's RuntimeError here escaped as UNEXPECTED and was retried 3 times
    with pytest.raises(PermanentError) as info:
        get_resizer(backend).resize(_avif_with_zeroed_payload(), ResizeSpec())
    assert info.value.code == ErrorCode.CORRUPT_IMAGE
    assert exception_type(info.value.__cause__) in info.value.message  # type: ignore[arg-type]


# ---- through the handler: DLQ on the first receive vs retry --------------------------------------------------------
@pytest.mark.parametrize(
    "exc", [IndexError("list index out of range"), _struct_error()], ids=["IndexError", "struct.error"]
)
def test_decode_exception_is_dead_lettered_on_the_first_receive_with_its_type(
    exc: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a JPEG whose decode raises an exception type the handler has no rule for
    _break_pillow_decode(monkeypatch, exc)
    store, dlq = FakeStore(), FakeDlq()
    store.add(KEY, jpeg(), run_id="run-c")
    app = make_app(store, dlq)

    # WHEN it is received for the first time
    response = _handle_one(app, receive_count=1)

    # THEN it is acknowledged (not retried) and dead-lettered at once, with CORRUPT_IMAGE and the type in the message
    assert response == {"batchItemFailures": []}
    ((body, attrs),) = dlq.sent
    assert attrs["error_code"] == "CORRUPT_IMAGE" and attrs["run_id"] == "run-c"
    assert exception_type(exc) in attrs["error_message"] and "gave up" not in attrs["error_message"]
    assert body["receive_count"] == 1 and body["error"]["retryable"] is False  # type: ignore[index]
    assert store.puts == {}
    (line,) = log_lines(app)
    assert line["outcome"] == "dlq" and line["code"] == "CORRUPT_IMAGE"


class _RaisingResizer:
    """A resizer that is not ours (no guard of its own): the pipeline still classifies what it raises."""

    name = "raising"

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def resize(self, data: bytes, spec: ResizeSpec) -> ResizeResult:
        raise self.exc

    def probe(self, data: bytes, limits: Limits) -> SourceInfo:
        raise self.exc


def _app_with(resizer: Any, store: FakeStore, dlq: FakeDlq) -> Thumbnailer:
    app = make_app(store, dlq)
    app.resizer = resizer
    return app


def test_the_pipeline_classifies_an_unguarded_resizers_exception_as_permanent() -> None:
    store, dlq = FakeStore(), FakeDlq()
    store.add(KEY, jpeg())
    response = _handle_one(_app_with(_RaisingResizer(_struct_error()), store, dlq))
    assert response == {"batchItemFailures": []}
    ((_, attrs),) = dlq.sent
    assert attrs["error_code"] == "CORRUPT_IMAGE" and "struct.error" in attrs["error_message"]


def test_memory_error_while_resizing_is_retried_then_dead_lettered_with_its_reason() -> None:
    store, dlq = FakeStore(), FakeDlq()
    store.add(KEY, jpeg())
    app = _app_with(_RaisingResizer(MemoryError()), store, dlq)
    assert _handle_one(app, receive_count=1) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert dlq.sent == []
    assert _handle_one(app, receive_count=3) == {"batchItemFailures": []}
    ((body, attrs),) = dlq.sent
    assert attrs["error_code"] == "RESOURCE_EXHAUSTED" and "gave up after 3 receives" in attrs["error_message"]
    assert body["error"]["retryable"] is True  # type: ignore[index]


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("a bug in storage"), ConnectionResetError(104, "reset by peer"), IndexError("storage client bug")],
    ids=["RuntimeError", "ConnectionReset", "IndexError"],
)
def test_an_exception_in_storage_stays_retryable(exc: Exception) -> None:
    # the same types that are permanent inside decoding are retried when storage raises them
    store, dlq = FakeStore(), FakeDlq()
    store.add(KEY, jpeg())
    store.fail_get[KEY] = exc
    app = make_app(store, dlq)
    assert _handle_one(app) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert dlq.sent == []
    (line,) = log_lines(app)
    assert line["outcome"] == "retry" and line["code"] == "UNEXPECTED"


def test_an_exception_while_writing_thumbnails_stays_retryable() -> None:
    class FailingPut(FakeStore):
        def put(
            self, bucket: str, key: str, data: bytes, *, content_type: str, cache_control: str, metadata: dict[str, str]
        ) -> None:
            raise ConnectionResetError(104, "reset by peer")

    store, dlq = FailingPut(), FakeDlq()
    store.add(KEY, jpeg())
    assert _handle_one(make_app(store, dlq)) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert dlq.sent == []
    assert (BUCKET, "thumbnails/large/hostile/x.jpg.jpg") not in store.puts
