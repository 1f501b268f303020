"""Compiler passes, one module per pass, and their registry."""
