"""Readers and writers for the data contracts in docs/ARCHITECTURE.md."""
