"""Prompt engineering over the BrokenVideos artifact taxonomy."""
