"""The `feedhouse` command line. Each module here with a `register(app)` adds commands."""
