"""Prefect flows: orchestration only (parameters, shard fan-out, retries, artifacts)."""

import os

# Prefect's anonymous usage heartbeat writes to the local SQLite database from a second
# connection and trips "database is locked" while flows run; synthq does not need it.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
