"""The procedural generator: scenes rendered from the prompt spec, artifacts with exact masks."""
