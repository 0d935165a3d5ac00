"""Gymnasium front ends over the sysgym kernels, one subpackage per family (see registry.py)."""
