"""Evaluate: train a model on a release (TRL on Ray Train), score it on benchmarks (lm-evaluation-harness)."""
