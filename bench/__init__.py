"""Benchmarks of the pipeline (`make bench`); results in bench/results/."""
