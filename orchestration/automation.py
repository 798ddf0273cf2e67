"""Whether schedules and sensors start on: setting `dagster_automation` (auto|on|off).

`auto` turns them on for a ClickHouse server and off for the embedded chDB store. On the
embedded store the minute audit alone costs about a core-second per run (docs/dagster.md),
and a demo store that no longer changes gains nothing from it: a 2-core laptop should sit
idle until someone starts a schedule in the UI. The run-failure sensor stays on everywhere
(it reads only Dagster's own run storage until a run fails).
"""

from dagster import DefaultScheduleStatus, DefaultSensorStatus

from feedhouse.core.config import load_settings
from feedhouse.core.errors import SettingsError
from orchestration.resources import ENV


def automation_on(env: str) -> bool:
    try:
        choice = load_settings().dagster_automation
    except SettingsError:
        choice = "auto"  # runs report the bad setting with its own one-line message
    return env == "production" if choice == "auto" else choice == "on"


AUTOMATION_ON = automation_on(ENV)
SCHEDULE_STATUS = DefaultScheduleStatus.RUNNING if AUTOMATION_ON else DefaultScheduleStatus.STOPPED
SENSOR_STATUS = DefaultSensorStatus.RUNNING if AUTOMATION_ON else DefaultSensorStatus.STOPPED
