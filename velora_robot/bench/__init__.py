"""Benchmarks behind `velora-robot bench NAME`: each prints a table and writes JSON."""
