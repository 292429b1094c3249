"""Ingest formats: each is one module with an ``Adapter`` subclass and one line in ADAPTERS.

Modules load lazily (only the format being ingested is imported), like ``models.ARCHS``.
The schema's ``dataset.ingest[].format`` enum lists the same names (a test checks).
"""

from __future__ import annotations

import importlib

from brokenvideos.errors import BrokenVideosError

ADAPTERS = {
    "folder": "brokenvideos.dataset.adapters.folder:FolderAdapter",
    "brokenvideos": "brokenvideos.dataset.adapters.brokenvideos:BrokenVideosAdapter",
    "genvideo": "brokenvideos.dataset.adapters.csvlists:GenVideoAdapter",
    "d3": "brokenvideos.dataset.adapters.csvlists:D3Adapter",
    "aigvdet": "brokenvideos.dataset.adapters.aigvdet:AIGVDetAdapter",
    "davis": "brokenvideos.dataset.adapters.davis:DavisAdapter",
    "mevis": "brokenvideos.dataset.adapters.mevis:MevisAdapter",
    "refytvos": "brokenvideos.dataset.adapters.mevis:RefYtvosAdapter",
}


def adapter_class(fmt: str):
    if fmt not in ADAPTERS:
        raise BrokenVideosError(f"unknown ingest format {fmt!r}; known: {', '.join(sorted(ADAPTERS))}")
    module, cls = ADAPTERS[fmt].split(":")
    return getattr(importlib.import_module(module), cls)


def build_adapter(entry: dict):
    """The adapter for one ``dataset.ingest[]`` entry (``format`` defaults to ``folder``)."""
    return adapter_class(entry.get("format") or "folder")(entry)


# entry keys the ingest CLI has a flag of its own for; any other option goes through --option KEY=JSON
FLAGS = ("format", "on_error", "labels_csv", "masks_dir", "default_label", "fps")


def cli_flags(entry: dict) -> str:
    """The ``brokenvideos ingest`` flags (shell-quoted) for one ``dataset.ingest[]`` entry, besides
    ``--root`` and ``--name``; the Snakemake rule passes these, so a config key and a flag agree."""
    import json
    import shlex

    flags: list[str] = []
    for key, value in sorted(entry.items()):
        if key in ("name", "root") or value is None:
            continue
        if key == "encode":
            flags += ["--encode"] if value else []
        elif key in FLAGS:
            flags += [f"--{key.replace('_', '-')}", str(value)]
        else:
            flags += ["--option", f"{key}={json.dumps(value, sort_keys=True)}"]
    return " ".join(shlex.quote(f) for f in flags)
