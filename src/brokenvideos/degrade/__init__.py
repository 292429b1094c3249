"""Lossy operations for robustness tests (He et al. 2024 V-D): ``degrade(src, out, op, level)``."""

from brokenvideos.degrade.ops import LEVELS, OPERATIONS, degrade

__all__ = ["LEVELS", "OPERATIONS", "degrade"]
