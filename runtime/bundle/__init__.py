"""Bundles on the running side: the format shared with the writer, loading and verification, summaries."""
