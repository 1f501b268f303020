"""Durability: the run directory's write-ahead journal, value files, and Chrome traces."""
