"""Merge, validate, split and describe a dataset; ingest existing data."""
