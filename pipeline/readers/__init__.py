"""Everything burnscan reads from outside: scene deliveries, catalogues, vector layers, fire archives.

One module per format (Planet, Sentinel-2, Landsat, plain GeoTIFF, vector layers, FIRMS CSVs),
the AOI's scene catalogue and the STAC fetcher. Each scene reader turns its shape into a
``SceneSource`` (``describe()`` without pixels, ``load(grid)`` onto an analysis grid); every
check of a file before it is opened or believed lives here.
"""
