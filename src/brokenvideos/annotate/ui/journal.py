"""A session's saved log on disk: a snapshot line, then one line per click.

A click is the latency-critical call (issue 14), so it costs one ``O_APPEND`` write of one short line:
no rewrite of the whole log, no fsync, no writer thread competing with the predictor for the GIL.
Every other edit (a label, undo, delete, a propagation, an export) rewrites the file atomically
and fsyncs it, which also folds the appended clicks into the snapshot.

What survives what: an appended click reaches the page cache before the reply is sent, so it
survives the server being killed; only a power cut can lose the clicks since the last rewrite.
A line torn by such a crash is the last one, and reading drops it with a warning.

The format (``format: 2``) is JSON lines: line 1 ``{"format", "video_id", "objects", "actions"}``,
then ``{"append": action}`` lines. A format-1 file (one indented JSON object) still reads.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from brokenvideos.io.atomic import write_text

log = logging.getLogger(__name__)

FORMAT = 2


class SessionJournal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()  # the descriptor: an append and a close may come from two threads
        self._fd: int | None = None
        self.exists = self.path.exists()

    def rewrite(self, doc: dict) -> None:
        """Replace the file with ``doc`` (atomically, fsynced); later appends go to the new file."""
        line = json.dumps({"format": FORMAT, **doc}, sort_keys=True) + "\n"
        with self._lock:
            self._close_fd()  # the rename leaves an open descriptor on the old inode
            write_text(self.path, line)
            self.exists = True

    def append(self, action: dict) -> None:
        """One click, at the end of the file (``rewrite`` must have made it: see ``exists``)."""
        line = (json.dumps({"append": action}, sort_keys=True) + "\n").encode()
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            os.write(self._fd, line)

    def read(self) -> dict:
        """The saved ``{"video_id", "objects", "actions"}`` with the appended clicks applied."""
        text = self.path.read_text()
        try:
            doc = json.loads(text)  # format 1, or a format-2 file with nothing appended
            appends = []
        except ValueError:
            lines = text.splitlines()
            doc, appends = json.loads(lines[0]), []
            for n, line in enumerate(lines[1:], start=2):
                try:
                    appends.append(json.loads(line)["append"])
                except (ValueError, KeyError, TypeError):
                    if n < len(lines) or text.endswith("\n"):
                        raise ValueError(f"line {n} is not an appended action") from None
                    log.warning("%s: dropped a torn last line (the server stopped mid-write)", self.path)
        if not isinstance(doc, dict) or doc.get("format") not in (1, FORMAT):
            raise ValueError(f"unknown format {doc.get('format') if isinstance(doc, dict) else doc!r}")
        return {**doc, "actions": list(doc["actions"]) + appends}

    def close(self) -> None:
        with self._lock:
            self._close_fd()

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
