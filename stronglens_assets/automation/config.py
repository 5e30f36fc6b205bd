"""``configs/automation.yaml``: the schedules' crons and the environments where schedules and
the automation sensor start running (crons and the time zone validated at load)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from stronglens_assets.config import StrictModel, load_config
from stronglens_assets.project import Project

AUTOMATION_CONFIG_FILENAME = "automation.yaml"

Environment = Literal["local", "s3"]


class ScheduleConfig(StrictModel):
    """One schedule: a 5-field cron string (UTC unless ``timezone`` says otherwise) and the
    environments in which it starts running (elsewhere it is present but stopped)."""

    cron: str
    running_in: list[Environment] = Field(default_factory=lambda: ["s3"])

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(value):
            raise ValueError(
                f"{value!r} is not a valid cron string (5 fields: minute hour day-of-month "
                "month day-of-week, e.g. '0 6 * * 1')"
            )
        return value


class SensorConfig(StrictModel):
    """The automation-condition sensor: environments where it runs, and its interval."""

    running_in: list[Environment] = Field(default_factory=lambda: ["s3"])
    minimum_interval_seconds: int = Field(default=300, ge=30)


class AutomationConfig(StrictModel):
    """``configs/automation.yaml``."""

    timezone: str = "UTC"
    observe_external_inputs: ScheduleConfig
    graph_refresh: ScheduleConfig
    d06_refresh: ScheduleConfig
    automation_sensor: SensorConfig = Field(default_factory=SensorConfig)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def load_automation_config(project: Project) -> AutomationConfig:
    """Load and validate ``configs/automation.yaml`` (a bad cron raises ``ConfigError``)."""
    return load_config(project.settings.config_dir / AUTOMATION_CONFIG_FILENAME, AutomationConfig)
