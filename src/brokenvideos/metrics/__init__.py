"""Scores of predicted artifact masks (J, F, J&F with DAVIS 2017 semantics) and of detectors."""
