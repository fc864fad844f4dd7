"""Synthesize (bottom-up): new scenes and self-contained queries grounded in each document."""
