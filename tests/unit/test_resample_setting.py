"""THUMB_RESAMPLE: Pillow's resampling filter as a setting (issue 16): accepted values, default, stable error code."""

from __future__ import annotations

import pytest
from PIL import Image

from thumbnailer.config import ENV_NAMES, Settings
from thumbnailer.errors import ConfigError, ErrorCode, InvalidSpec
from thumbnailer.resizers import get_resizer
from thumbnailer.resizers.base import DEFAULT_RESAMPLE, RESAMPLE_CHOICES


def test_every_filter_is_accepted_from_the_environment_and_reaches_pillow() -> None:
    assert ENV_NAMES["resample"] == "THUMB_RESAMPLE"
    assert set(RESAMPLE_CHOICES) == {"lanczos", "bicubic", "hamming", "bilinear", "box"}
    for name in RESAMPLE_CHOICES:
        settings = Settings.from_env({"THUMB_RESAMPLE": f" {name} "})
        assert settings.resample == name
        assert settings.to_env()["THUMB_RESAMPLE"] == name
        resizer = get_resizer("pillow", resample=settings.resample)
        assert resizer.resample == Image.Resampling[name.upper()]  # type: ignore[attr-defined]


def test_default_is_the_one_chosen_from_the_benchmark() -> None:
    assert Settings().resample == DEFAULT_RESAMPLE == "lanczos"
    assert Settings.from_env({}).resample == DEFAULT_RESAMPLE
    assert get_resizer("pillow").resample == Image.Resampling.LANCZOS  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["LANCZOS3", "nearest", "", "lanczos,bicubic", "cubic"])
def test_unknown_filter_is_a_config_error_with_a_stable_code(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"THUMB_RESAMPLE": value})
    err = info.value
    assert err.code == ErrorCode.INVALID_CONFIG and err.field == "resample"
    assert "THUMB_RESAMPLE" in str(err) and "lanczos|bicubic|hamming|bilinear|box" in str(err)


def test_pillow_resizer_rejects_an_unknown_filter_with_invalid_spec() -> None:
    with pytest.raises(InvalidSpec) as info:
        get_resizer("pillow", resample="nearest")
    assert info.value.code == ErrorCode.INVALID_SPEC and "resample" in str(info.value)
