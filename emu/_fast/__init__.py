"""Compiled twins built from fast/*.pyx (one extension module per file)."""
