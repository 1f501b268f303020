"""The bundle contract: what crosses from compiler to runtime, spelled once (vocabulary and manifest records)."""
