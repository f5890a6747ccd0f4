"""Settings: defaults, env round-trip, validation with stable codes and one message shape."""

from __future__ import annotations

import pytest

from thumbnailer.config import ENV_NAMES, Settings, lambda_memory_mb
from thumbnailer.errors import ConfigError, ErrorCode


def test_defaults_round_trip_through_env() -> None:
    s = Settings()
    env = s.to_env()
    assert set(env) == set(ENV_NAMES.values()) and all(isinstance(v, str) for v in env.values())
    assert Settings.from_env(env) == s


def test_custom_settings_round_trip() -> None:
    s = Settings(
        output_bucket="out",
        input_prefix="in/",
        output_prefix="thumbs/",
        dlq_url="http://q/dlq",
        backend="vips",
        sizes="a:800x600,b:100x100,c:300x200",
        fit="attention",
        format="webp",
        quality=72,
        max_input_bytes=1234,
        max_pixels=99,
        cache_control="no-cache",
        max_receive_count=5,
        vips_threads=2,
    )
    assert Settings.from_env(s.to_env()) == s
    assert [x.name for x in s.size_specs] == ["a", "c", "b"]  # largest box first
    spec = s.resize_spec()
    assert spec.fit == "attention" and spec.format == "webp" and spec.quality == 72
    assert spec.limits.max_input_bytes == 1234 and spec.limits.max_pixels == 99


def test_missing_env_takes_defaults_and_unrelated_vars_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "THUMB_BACKEND": "vips"}) == Settings(backend="vips")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("THUMB_BACKEND", "imagemagick"),
        ("THUMB_FIT", "stretch"),
        ("THUMB_FORMAT", "bmp"),
        ("THUMB_QUALITY", "0"),
        ("THUMB_QUALITY", "101"),
        ("THUMB_QUALITY", "eighty"),
        ("THUMB_SIZES", "large:1024"),
        ("THUMB_SIZES", "a:10x10,a:20x20"),
        ("THUMB_SIZES", ""),
        ("THUMB_SIZES", "Big Name:10x10"),
        ("THUMB_SIZES", "a:0x10"),
        ("THUMB_MAX_PIXELS", "-1"),
        ("THUMB_MAX_RECEIVE_COUNT", "0"),
        ("THUMB_VIPS_THREADS", "-2"),
        ("THUMB_OUTPUT_PREFIX", "thumbnails"),
        ("THUMB_OUTPUT_PREFIX", "uploads/thumbs/"),
        ("THUMB_INPUT_PREFIX", "uploads"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    err = info.value
    assert err.code == ErrorCode.INVALID_CONFIG
    assert ENV_NAMES[err.field] == name
    assert err.message.startswith("Expected ") and f"for {name} but received" in err.message


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError):
        Settings(quality=True)  # bool is not an int here


@pytest.mark.parametrize(
    ("memory", "explicit", "threads"),
    [
        (None, 0, 1),
        (128, 0, 1),
        (1769, 0, 1),
        (3538, 0, 2),
        (10240, 0, 5),
        (10240, 3, 3),
    ],
)
def test_vips_threads_follow_lambda_memory(memory: int | None, explicit: int, threads: int) -> None:
    assert Settings(vips_threads=explicit).effective_vips_threads(memory) == threads


def test_lambda_memory_is_read_from_the_given_env() -> None:
    assert lambda_memory_mb({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048"}) == 2048
    assert lambda_memory_mb({}) is None
