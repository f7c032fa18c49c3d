"""The simulator: SIMULATED PlanetScope-like scenes of a Sahel village or a search box, with their truth.

A wing of its own: the product never imports it. Only the command line (the demo it runs when
no scenes are registered) and the benchmark do.
"""
