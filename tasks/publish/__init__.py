"""Publish: versioned Parquet releases with a dataset card, stats and a catalog entry."""
