"""Compiled simulation kernels (Cython, nogil loops over a batch of environments)."""
