"""Everything burnscan writes: the atomic writer, reports (JSON, Markdown, HTML), figures and maps.

``write.py`` is the only module that writes files; the others turn results into documents and
figures without touching the disk.
"""
