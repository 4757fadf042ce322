"""Benchmarks, peer runners and synthetic scenario generators, run from a checkout (``python -m benchmarks.NAME``).

Not part of the installed package: nothing in ``toppose`` imports them (``tests/test_layout.py``).
"""
