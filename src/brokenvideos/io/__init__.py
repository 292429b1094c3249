"""Readers and writers for the data contracts in ARCHITECTURE.md."""
