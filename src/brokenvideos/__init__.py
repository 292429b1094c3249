"""brokenvideos: build, annotate, version and benchmark datasets of AI-generated videos."""

__version__ = "0.1.0"
