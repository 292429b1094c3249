"""Open sessions by id, one per video, sharing one predictor.

SAM2's predictor object is shared by every session (its weights are the expensive part); each
session holds its own inference state. One lock serializes predictor calls: torch on 2 CPU cores
gains nothing from running two at once, and SAM2's state is not thread-safe.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from pathlib import Path

from brokenvideos.annotate.sam2_annotator import Sam2Settings
from brokenvideos.annotate.ui.catalogue import Catalogue
from brokenvideos.annotate.ui.session import AnnotationSession, NotFound

MAX_OPEN_SESSIONS = 8  # each holds its video's frames at the model's size; older ones are closed


class SessionStore:
    def __init__(self, catalogue: Catalogue, predictor, settings: Sam2Settings, out: Path):
        self.catalogue, self.predictor, self.settings = catalogue, predictor, settings
        self.out = Path(out)
        self.saved_dir = self.out / "sessions"
        self.predictor_lock = threading.Lock()
        self._sessions: OrderedDict[str, AnnotationSession] = OrderedDict()
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()

    def saved_path(self, video_id: str) -> Path:
        return self.saved_dir / f"{video_id}.json"

    def open(self, video_id: str) -> tuple[AnnotationSession, bool]:
        """The video's open session, or a new one restored from its saved prompts (if any)."""
        entry = self.catalogue.get(video_id)
        if entry is None:
            raise NotFound(f"unknown video {video_id!r}")
        with self._open_lock:  # two tabs opening one video must share one session
            return self._open(video_id, entry)

    def _open(self, video_id, entry) -> tuple[AnnotationSession, bool]:
        with self._lock:
            for sid, s in self._sessions.items():
                if s.entry.video_id == video_id:
                    self._sessions.move_to_end(sid)
                    return s, False
        restored = self.saved_path(video_id).exists()
        session = AnnotationSession(secrets.token_urlsafe(12), entry, self.catalogue.frames(video_id), self.predictor,
                                    self.settings, self.predictor_lock, self.saved_path(video_id))
        with self._lock:
            self._sessions[session.session_id] = session
            evicted = []
            while len(self._sessions) > MAX_OPEN_SESSIONS:
                evicted.append(self._sessions.popitem(last=False)[1])
        for s in evicted:  # their prompts are on disk; reopening restores them
            s.close()
        return session, restored

    def get(self, session_id: str) -> AnnotationSession:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise NotFound(f"unknown session {session_id!r}")
        return session

    def close(self, session_id: str, discard: bool = False) -> None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            raise NotFound(f"unknown session {session_id!r}")
        session.close()
        if discard:
            session.saved_path.unlink(missing_ok=True)

    def close_all(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), OrderedDict()
        for s in sessions:
            s.close()
