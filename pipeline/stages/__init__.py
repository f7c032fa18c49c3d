"""The analysis stages: pure functions on arrays, in the order of the flow.

Co-registration, radiometric normalisation, burn index, change between dates, threshold,
dating, polygons, burned extent, then the evidence stages (structures, fire corroboration,
confidence) and the search's clusters. No stage opens a file or imports a reader, an output,
the simulator or the benchmark: ``tests/test_architecture.py`` checks it.
"""
