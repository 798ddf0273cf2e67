"""Fault drills: each module here with `register(drill_app)` adds `feedhouse drill NAME`.

A drill prints one JSON object on the last line of stdout with at least
sent/stored/lost/duplicates_stored/ok, and exits 0 only when ok. Every drill (and the
demo, and the tests' ingest helpers) sets up and tears down through one runner,
`runner.DrillRun` (its docstring shows the life cycle); the pieces under it are
`process.py` (the `feedhouse run` subprocess, status polling), `served.py` (the
session server's sessions, feeds and counters), `verdict.py` (the verdict arithmetic and
printing) and `options.py` (shared command-line options).
"""
