"""Files shipped inside the package (schemas, presets), found by name as sam2 finds its configs, so a
non-editable ``pip install`` works as well as the checkout."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path


def resource_text(name: str) -> str:
    """The text of ``brokenvideos/<name>``, e.g. ``schemas/config.schema.yaml``."""
    return files("brokenvideos").joinpath(name).read_text(encoding="utf-8")


def resource_path(name: str) -> Path:
    """A filesystem path of ``brokenvideos/<name>`` (the package is installed unzipped)."""
    with as_file(files("brokenvideos").joinpath(name)) as path:
        return Path(path)
