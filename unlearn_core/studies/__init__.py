"""Experiments over many runs: the results table (`table`) and speed benchmarks (`bench`)."""
