"""Evidence about a run: code and library versions, the manifest, the run log, signatures,
verification, comparison and re-runs.
"""
