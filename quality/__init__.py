"""Data quality: Great Expectations suites (quality/suites/*.json) run against ClickHouse.

Nothing here imports Great Expectations at import time (it takes seconds): only
`quality.gx_engine` does, inside its functions.
"""
