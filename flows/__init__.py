"""Prefect flows: orchestration only (parameters, shard fan-out, retries, artifacts)."""

import os

# Prefect's anonymous usage heartbeat writes to the local SQLite database from a second
# connection and trips "database is locked" while flows run; synthq does not need it.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A run without a Prefect server starts a local one and gives it 20 s by default: on a node
# whose cores are busy (another run, a Ray job) that fails the command before any work.
# Prefect reads its settings once, at import: these must be set before it is imported.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
