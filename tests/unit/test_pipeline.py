"""Output keys, skip rules and the fetch -> resize -> put step with an in-memory store and a stub resizer."""

from __future__ import annotations

import pytest

from thumbnailer.config import Settings
from thumbnailer.events import ObjectRef
from thumbnailer.pipeline import SourceObject, describe, make_thumbnails, output_key, should_skip
from thumbnailer.resizers.base import ResizeResult, ResizeSpec, SourceInfo, Thumbnail, Timings


@pytest.mark.parametrize(
    ("key", "size", "fmt", "expected"),
    [
        ("uploads/a/x.jpg", "small", "jpeg", "thumbnails/small/a/x.jpg.jpg"),
        ("uploads/b/x.jpg", "small", "jpeg", "thumbnails/small/b/x.jpg.jpg"),
        ("uploads/x.png", "large", "webp", "thumbnails/large/x.png.webp"),
        ("uploads/x", "large", "png", "thumbnails/large/x.png"),
        ("uploads/a b/é+.jpg", "large", "avif", "thumbnails/large/a b/é+.jpg.avif"),
    ],
)
def test_output_keys_keep_the_full_path_and_append_the_extension(key: str, size: str, fmt: str, expected: str) -> None:
    assert output_key(key, size, fmt, Settings()) == expected


def test_output_keys_do_not_collide_across_folders_and_formats() -> None:
    keys = ["uploads/a/x.jpg", "uploads/b/x.jpg", "uploads/a/x.jpg.jpg", "uploads/a/x.png", "uploads/a/x"]
    outs = {output_key(k, "small", "jpeg", Settings()) for k in keys}
    assert len(outs) == len(keys)


def test_skip_rules() -> None:
    s = Settings()
    assert should_skip(ObjectRef("b", "uploads/x.jpg"), s) == ""
    assert should_skip(ObjectRef("b", "other/x.jpg"), s)
    assert should_skip(ObjectRef("b", "thumbnails/small/x.jpg.jpg"), Settings(input_prefix=""))
    assert should_skip(ObjectRef("b", "thumbnails/x.jpg"), Settings(input_prefix="", output_bucket="o")) == ""


class StubResizer:
    name = "stub"

    def resize(self, data: bytes, spec: ResizeSpec) -> ResizeResult:
        outs = tuple(Thumbnail(s.name, s.width // 2, s.height // 2, "webp", "image/webp", data[:3]) for s in spec.sizes)
        return ResizeResult(outs, SourceInfo("png", 10, 10), Timings(1, 2, 3, 6.0), "stub")

    def probe(self, data: bytes, limits: object) -> SourceInfo:
        return SourceInfo("png", 10, 10)


class MemStore:
    def __init__(self) -> None:
        self.puts: dict[tuple[str, str], dict[str, object]] = {}

    def get(self, bucket: str, key: str, *, version_id: str = "", max_bytes: int | None = None) -> SourceObject:
        raise AssertionError("not used")

    def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None:
        self.puts[(bucket, key)] = {"content_type": content_type, "cache_control": cache_control, **metadata}


def test_make_thumbnails_writes_every_size_with_linking_metadata() -> None:
    store = MemStore()
    src = SourceObject("b", "uploads/é/x.png", b"abcdef", etag="E", version_id="V", metadata={"run-id": "R"})
    s = Settings(sizes="big:400x400,tiny:40x40")
    out = make_thumbnails(src, StubResizer(), s.resize_spec(), store, s, handler_start_ms=123, started=0.0)
    assert [t.key for t in out.thumbnails] == ["thumbnails/big/é/x.png.webp", "thumbnails/tiny/é/x.png.webp"]
    meta = store.puts[("b", "thumbnails/big/é/x.png.webp")]
    assert meta["content_type"] == "image/webp" and meta["cache_control"] == s.cache_control
    assert meta["source-key"] == "uploads/%C3%A9/x.png" and meta["run-id"] == "R"
    assert (meta["source-etag"], meta["source-version-id"], meta["backend"]) == ("E", "V", "stub")
    assert meta["handler-start-ms"] == "123" and meta["resize-ms"] == "6.0"
    assert all(str(v).isascii() for v in meta.values())


def test_describe_unknown_exceptions() -> None:
    assert describe(KeyError("x")) == ("UNEXPECTED", "KeyError: 'x'")
