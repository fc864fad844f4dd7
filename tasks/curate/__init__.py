"""Curate: score each query on seven criteria, drop near-duplicates, keep the best per topic."""
