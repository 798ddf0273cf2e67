"""`feedhouse demo`: the main job on the embedded default, end to end, in minutes.

scenario.py runs it (sessions, MQTT load, the ingest, the outage, `run_demo`);
live_view.py draws the live table and the final one; verification.py proves afterwards
that everything reconciled (audit, reconciliation, quality, report as Dagster runs; the
ledger); sample_archive.py leaves a day of dumps for the backfill partition.
"""
