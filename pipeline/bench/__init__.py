"""The benchmarks: accuracy against simulated truth and real fire perimeters, the baselines
investigators would otherwise use, and time and memory against the decode floor.

A wing of its own: the product never imports it.
"""
