"""`feedhouse demo`: the main job on the embedded default, end to end."""

from __future__ import annotations

import typer

from feedhouse.app.cli.context import console, settings_from
from feedhouse.app.demo.scenario import DemoPlan, run_demo


def demo(
    ctx: typer.Context,
    seconds: float = typer.Option(60.0, "--seconds", min=10, help="how long feeds run"),
    outage_seconds: float = typer.Option(
        15.0, "--outage-seconds", min=0, help="ClickHouse unreachable this long, mid-run"
    ),
    trades_per_s: float = typer.Option(400.0, "--trades-per-s", min=1, help="exchange replay rate"),
    readings_per_s: float = typer.Option(1000.0, "--readings-per-s", min=1, help="MQTT load"),
) -> None:
    """The main job on the embedded default: replayed exchanges and MQTT sensors through the
    pipeline, an outage mid-run, then audit, reconciliation, quality and the report."""

    if outage_seconds >= seconds:
        raise typer.BadParameter("--outage-seconds must be shorter than --seconds")
    settings = settings_from(ctx)
    plan = DemoPlan(seconds=seconds, outage_seconds=outage_seconds,
                    trades_per_s=trades_per_s, readings_per_s=readings_per_s)
    raise typer.Exit(run_demo(settings, plan, console))


def register(app: typer.Typer) -> None:
    app.command()(demo)
