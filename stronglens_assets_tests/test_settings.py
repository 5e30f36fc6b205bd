"""Environment selection: defaults, validation, clear errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from stronglens_assets.settings import PROJECT_ROOT, SettingsError, load_settings


def test_local_is_the_default(tmp_path: Path) -> None:
    settings = load_settings({"STRONGLENS_HOME": str(tmp_path)})
    assert settings.env == "local"
    assert settings.dagster_home == tmp_path / "dagster_home"
    assert settings.storage_root == tmp_path / "storage"
    assert settings.config_dir == PROJECT_ROOT / "configs"


def test_s3_settings() -> None:
    settings = load_settings(
        {
            "STRONGLENS_ENV": "S3",
            "STRONGLENS_S3_BUCKET": "darkhaloscope",
            "STRONGLENS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        }
    )
    assert settings.env == "s3"
    assert settings.storage_uri == "s3://darkhaloscope/stronglens_calibration"
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"STRONGLENS_ENV": "prod"}, "STRONGLENS_ENV='prod' is not a known environment"),
        ({"STRONGLENS_ENV": "s3"}, "needs STRONGLENS_S3_BUCKET"),
        ({"STRONGLENS_ENV": "s3", "STRONGLENS_S3_BUCKET": "Bad_Bucket"}, "STRONGLENS_S3_BUCKET"),
        ({"STRONGLENS_S3_ENDPOINT_URL": "127.0.0.1:9000"}, "STRONGLENS_S3_ENDPOINT_URL"),
        ({"STRONGLENS_S3_PREFIX": "a b"}, "STRONGLENS_S3_PREFIX"),
        ({"STRONGLENS_CONFIG_DIR": "/nonexistent/configs"}, "STRONGLENS_CONFIG_DIR"),
        ({"STRONGLENS_PROFILE": "huge"}, "STRONGLENS_PROFILE='huge' is not a known profile"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_profile_defaults_to_demo_locally_and_full_on_s3() -> None:
    assert load_settings({}).profile == "demo"
    assert load_settings({"STRONGLENS_ENV": "s3", "STRONGLENS_S3_BUCKET": "bkt"}).profile == "full"
    assert load_settings({"STRONGLENS_PROFILE": "full"}).profile == "full"


def test_each_environment_and_bucket_has_its_own_dagster_instance(tmp_path: Path) -> None:
    """Failed S3 attempts never show up as runs or checks of the local demo's instance."""
    home = {"STRONGLENS_HOME": str(tmp_path)}
    local = load_settings(home)
    s3 = load_settings({**home, "STRONGLENS_ENV": "s3", "STRONGLENS_S3_BUCKET": "darkhaloscope"})
    other = load_settings(
        {
            **home,
            "STRONGLENS_ENV": "s3",
            "STRONGLENS_S3_BUCKET": "darkhaloscope",
            "STRONGLENS_S3_PREFIX": "trial/run2",
        }
    )
    homes = {local.dagster_home, s3.dagster_home, other.dagster_home}
    assert len(homes) == 3
    for dagster_home in homes:
        assert dagster_home.is_relative_to(tmp_path)
    for a in homes:
        for b in homes - {a}:
            assert not a.is_relative_to(b)  # not nested inside one another


def test_environment_variables_reproduce_the_settings(tmp_path: Path) -> None:
    environ = {
        "STRONGLENS_HOME": str(tmp_path),
        "STRONGLENS_ENV": "s3",
        "STRONGLENS_S3_BUCKET": "darkhaloscope",
        "STRONGLENS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    settings = load_settings(environ)
    assert settings.environment_variables() == environ
    assert load_settings(settings.environment_variables()) == settings
