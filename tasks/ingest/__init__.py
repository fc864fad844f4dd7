"""Ingest: HTML pages in, cleaned documents out (main text, title, url, quality signals)."""
