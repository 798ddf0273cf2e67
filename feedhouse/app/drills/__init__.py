"""Fault drills: each module here with `register(drill_app)` adds `feedhouse drill NAME`.

A drill prints one JSON object on the last line of stdout with at least
sent/stored/lost/duplicates_stored/ok, and exits 0 only when ok.
"""
