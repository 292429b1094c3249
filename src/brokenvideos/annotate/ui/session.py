"""One video being annotated: its prompt log, the SAM2 predictor state, the masks on screen.

Everything a person does is an *action* in a log (a prompt on one frame, or a propagation with
how far it got), saved to disk as it is made. The predictor state is a pure function of the log:
undo, deleting an object and reopening after a restart all rebuild it by replaying the log
through the same SAM2 calls, so the masks come back exactly as they were.

Prompts use the annotate step's rules (``Sam2Session._add``): an instance's first prompt starts it
(``clear_old_points``), later ones refine the tracked mask on their frame, a box clears the
frame's points. Propagation is SAM2's ``propagate_in_video`` from the earliest prompted frame
(or a chosen one), forward, backward or both, one frame at a time so it can stop early.

Export does not trust the screen: it replays the prompts exactly as ``annotate.method: sam2``
will (``Sam2Session.run``) and writes those masks, so the exported ``prompts.json`` reproduces the
exported PNGs by construction. For the usual order (prompts, propagate both ways, refinements,
propagate both ways) that replay is the very sequence of calls the page made and nothing
changes; otherwise the frames that changed are reported to the page, which then shows them.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from brokenvideos.annotate.export import encode_coco_rle
from brokenvideos.annotate.prompts_file import (
    FramePrompt,
    InstancePrompts,
    PromptsFile,
    VideoPrompts,
    check_against_video,
    load_prompts,
    write_prompts,
)
from brokenvideos.annotate.sam2_annotator import Sam2Session, Sam2Settings, inference_context, merge_logits, write_jpeg_frames
from brokenvideos.annotate.ui.catalogue import VideoEntry
from brokenvideos.annotate.ui.journal import SessionJournal
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.masks import PALETTE, write_video_masks
from brokenvideos.prompts.taxonomy import SUBCATEGORIES

log = logging.getLogger(__name__)

MAX_OBJECT_ID = 255  # DAVIS palette PNGs hold ids 1..255
DIRECTIONS = {"forward": (False,), "backward": (True,), "both": (False, True)}


class UIError(Exception):
    """A request the tool refuses; ``status`` is the HTTP code, the message one line."""

    status = 400

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class BadRequest(UIError):
    status = 400


class NotFound(UIError):
    status = 404


class Busy(UIError):
    status = 409


class PredictorFailed(UIError):
    status = 500


class WouldWait(Exception):
    """The predictor is busy with another request (the caller retries off the event loop)."""


def _predictor_failed(exc: Exception) -> PredictorFailed:
    return PredictorFailed(f"SAM2 predictor failed: {exc.__class__.__name__}: {exc}"[:300])


def colour(object_id: int) -> str:
    r, g, b = PALETTE[3 * object_id: 3 * object_id + 3]
    return f"#{r:02x}{g:02x}{b:02x}"


def frame_rles(mask: np.ndarray) -> dict[str, dict]:
    """Per object id on one merged id map: COCO RLE with counts as str (pycocotools' own text)."""
    return _rles(mask, [int(k) for k in np.unique(mask) if k])


def _rles(mask: np.ndarray, ids: list[int]) -> dict[str, dict]:
    if not ids:
        return {}
    # H×W×N in Fortran order, as pycocotools wants it, made in one comparison on the transposed
    # map (a click's budget: a tenth of the per-object stack and copy for 9 objects)
    stack = (np.ascontiguousarray(mask.T)[None] == np.asarray(ids, np.uint8)[:, None, None]).view(np.uint8).T
    return {str(k): {"size": r["size"], "counts": r["counts"].decode("ascii")}
            for k, r in zip(ids, mask_utils.encode(stack))}


def changed_rles(before: np.ndarray, after: np.ndarray, always: int) -> dict[str, dict]:
    """RLEs of the objects whose pixels differ between two id maps of a frame (and of ``always``),
    an emptied object as an all-zero RLE: all a page that holds ``before`` needs to show ``after``."""
    diff = before != after
    return _rles(after, sorted({int(k) for k in np.unique(np.concatenate([before[diff], after[diff]])) if k} | {always}))


def _prompt_of(action: dict) -> FramePrompt:
    points = tuple((float(x), float(y)) for x, y in action.get("points") or [])
    box = action.get("box")
    return FramePrompt(int(action["frame"]), points, tuple(int(v) for v in action.get("labels") or []),
                       tuple(float(v) for v in box) if box is not None else None)


@dataclass
class PropagationJob:
    """A propagation running in its own thread; the request streams its events or waits."""

    directions: tuple[bool, ...]
    start_frame: int | None
    total: int
    events: queue.Queue = field(default_factory=queue.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    error: str | None = None
    cancelled: bool = False
    frames: dict[int, dict] = field(default_factory=dict)


class AnnotationSession:
    def __init__(self, session_id: str, entry: VideoEntry, frames: np.ndarray, predictor, settings: Sam2Settings,
                 predictor_lock: threading.Lock, saved_path: Path):
        self.session_id, self.entry = session_id, entry
        self.predictor, self.settings, self.lock = predictor, settings, predictor_lock
        self.saved_path = saved_path
        self.num_frames, self.height, self.width = frames.shape[:3]
        # SAM2 reads frames from a JPEG folder; the annotate step writes the same one, so both see
        # the same pixels and replay gives the same masks.
        self._tmp = Path(tempfile.mkdtemp(prefix="brokenvideos-ui-"))
        write_jpeg_frames(frames, self._tmp)
        with inference_context(predictor):
            self.sam = Sam2Session(predictor, self._tmp, self.num_frames, self.height, self.width, settings)
        self.objects: dict[int, dict] = {}
        self.actions: list[dict] = []
        self.masks = np.zeros((self.num_frames, self.height, self.width), np.uint8)
        self.job: PropagationJob | None = None
        self._stale = False  # a predictor call failed mid-way: rebuild before the next one
        self.last_predictor_ms: float | None = None
        self.journal = SessionJournal(saved_path)
        self._save_lock = threading.RLock()  # labels are saved outside the predictor lock
        if self.journal.exists:
            self._restore(saved_path)

    # --- persistence -------------------------------------------------------------------------

    def save(self) -> None:
        """Rewrite the saved log (atomically, fsynced): every edit but a click."""
        with self._save_lock:
            self._saving(self.journal.rewrite, self._snapshot())

    def _log_click(self, action: dict) -> None:
        """Log a click and save it as one appended line (see ``journal``); the first one writes the
        file. Under the save lock, so a label saved meanwhile neither misses it nor repeats it."""
        with self._save_lock:
            self.actions.append(action)
            self.objects.setdefault(action["object_id"], {"subcategory": None})
            if self.journal.exists:
                self._saving(self.journal.append, action)
            else:
                self.save()

    def _saving(self, write, doc) -> None:
        # As before the journal: a failed save is logged and the session keeps working in memory
        # (the next successful rewrite holds everything).
        try:
            write(doc)
        except (OSError, BrokenVideosError) as exc:
            log.error("annotate-ui: cannot save %s: %s", self.saved_path, " ".join(str(exc).split()))

    def _snapshot(self) -> dict:
        return {"video_id": self.entry.video_id,
                "objects": {str(k): dict(v) for k, v in sorted(self.objects.items())},
                "actions": list(self.actions)}

    def _restore(self, path: Path) -> None:
        try:
            doc = self.journal.read()
            objects = {int(k): {"subcategory": v.get("subcategory")} for k, v in doc["objects"].items()}
            actions = list(doc["actions"])
            for a in actions:
                if a["op"] not in ("prompt", "propagate"):
                    raise ValueError(f"unknown op {a['op']!r}")
                if a["op"] == "prompt":  # an appended click may have started its object
                    objects.setdefault(int(a["object_id"]), {"subcategory": None})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BrokenVideosError(f"{path}: not a saved annotate-ui session ({exc})") from None
        self.objects, self.actions = objects, actions
        with self.lock:
            self._rebuild()
        self.save()  # one snapshot again (the clicks folded in, a format-1 file upgraded)
        log.info("restored %s: %d objects, %d actions", self.entry.video_id, len(objects), len(actions))

    def close(self) -> None:
        if self.job is not None:
            self.job.cancel.set()
            self.job.finished.wait(timeout=60)
        self.journal.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    # --- views -------------------------------------------------------------------------------

    def objects_json(self) -> list[dict]:
        return [{"object_id": k, "subcategory": v.get("subcategory"), "colour": colour(k),
                 "num_prompts": sum(1 for a in self.actions if a["op"] == "prompt" and a["object_id"] == k)}
                for k, v in sorted(self.objects.items())]

    def all_frames(self) -> dict[str, dict]:
        return {str(t): frame_rles(self.masks[t]) for t in range(self.num_frames)}

    def state_json(self) -> dict:
        return {"session_id": self.session_id, "video": self.entry.to_json(), "objects": self.objects_json(),
                "actions": self.actions, "frames": self.all_frames(),
                "propagating": self.job is not None and not self.job.finished.is_set()}

    # --- checks ------------------------------------------------------------------------------

    def _not_busy(self) -> None:
        if self.job is not None and not self.job.finished.is_set():
            raise Busy("a propagation is running on this session: cancel it or wait for it")

    @contextlib.contextmanager
    def _editing(self, wait: bool = True):
        """The predictor lock for an edit; refused at once (not queued) while this session propagates.
        ``wait=False`` raises ``WouldWait`` instead of queueing behind another session's work."""
        self._not_busy()
        if not self.lock.acquire(blocking=wait):
            raise WouldWait()
        try:
            self._not_busy()
            yield
        finally:
            self.lock.release()

    def _check_frame(self, frame) -> int:
        if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < self.num_frames:
            raise BadRequest(f"frame {frame!r} is outside the video (0..{self.num_frames - 1})")
        return frame

    def _check_xy(self, x, y, what: str) -> None:
        if not (0 <= x <= self.width and 0 <= y <= self.height):
            raise BadRequest(f"{what} ({x:g}, {y:g}) is outside the {self.width}x{self.height} frame")

    def _object(self, object_id: int) -> dict:
        if object_id not in self.objects:
            raise NotFound(f"object {object_id} is not in this session")
        return self.objects[object_id]

    # --- predictor calls (caller holds self.lock) --------------------------------------------

    def _apply_prompt(self, action: dict, started: set[int]) -> None:
        obj = int(action["object_id"])
        p = _prompt_of(action)
        _, obj_ids, logits = self.sam._add(obj, p, clear=obj not in started)
        started.add(obj)
        self.masks[p.frame] = merge_logits(logits, list(obj_ids))

    def _run_direction(self, reverse: bool, start: int | None, limit: int | None, job: PropagationJob | None) -> int:
        """Track one direction; stop after ``limit`` frames (replay) or when the job is cancelled."""
        n = 0
        gen = self.predictor.propagate_in_video(self.sam.state, start_frame_idx=start, reverse=reverse)
        try:
            for t, obj_ids, logits in gen:
                self.masks[t] = merge_logits(logits, list(obj_ids))
                n += 1
                if job is not None:
                    job.done += 1
                    rles = frame_rles(self.masks[t])
                    job.frames[t] = rles
                    job.events.put({"type": "frame", "frame": t, "masks": rles, "done": job.done, "total": job.total})
                    if job.cancel.is_set():
                        break
                elif n == limit:
                    break
        finally:
            gen.close()
        return n

    def _rebuild(self) -> None:
        """Predictor state and masks from the log alone (undo, delete, restore, after a failure)."""
        self.predictor.reset_state(self.sam.state)
        self.masks[:] = 0
        started: set[int] = set()
        try:
            with inference_context(self.predictor):
                for a in self.actions:
                    if a["op"] == "prompt":
                        self._apply_prompt(a, started)
                    else:
                        for reverse, n in zip((False, True), a["tracked"]):
                            if n is not None:
                                self._run_direction(reverse, a["start_frame"], n, None)
        except Exception as exc:
            self._stale = True
            raise _predictor_failed(exc) from None
        self._stale = False

    def _fresh(self) -> None:
        if self._stale:
            self._rebuild()

    # --- operations --------------------------------------------------------------------------

    def add_prompt(self, frame, object_id, points=None, labels=None, box=None, wait: bool = True,
                   changed_only: bool = False) -> dict:
        """``{"frame", "masks"}``: every object's RLE on the frame, or with ``changed_only`` (the
        click channel) those whose pixels this prompt changed, the prompted object always among them."""
        frame = self._check_frame(frame)
        if isinstance(object_id, bool) or not isinstance(object_id, int) or not 1 <= object_id <= MAX_OBJECT_ID:
            raise BadRequest(f"object_id {object_id!r} must be an integer in 1..{MAX_OBJECT_ID}")
        points, labels = list(points or []), list(labels or [])
        if len(points) != len(labels):
            raise BadRequest(f"{len(points)} points but {len(labels)} labels")
        if not points and box is None:
            raise BadRequest("a prompt needs at least one point or a box")
        for (x, y), lab in zip(points, labels):
            self._check_xy(x, y, "point")
            if lab not in (0, 1):
                raise BadRequest(f"label {lab!r} must be 1 (+) or 0 (-)")
        if box is not None:
            x0, y0, x1, y1 = box
            self._check_xy(x0, y0, "box corner")
            self._check_xy(x1, y1, "box corner")
            if not (x0 < x1 and y0 < y1):
                raise BadRequest(f"box must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got {list(box)}")
        action = {"op": "prompt", "object_id": object_id, "frame": frame}
        if points:
            action.update(points=[[float(x), float(y)] for x, y in points], labels=[int(v) for v in labels])
        if box is not None:
            action["box"] = [float(v) for v in box]
        with self._editing(wait):
            self._fresh()
            started = {a["object_id"] for a in self.actions if a["op"] == "prompt"}
            before = self.masks[frame].copy()
            try:
                with inference_context(self.predictor):
                    t0 = time.perf_counter()
                    self._apply_prompt(action, started)
                    predictor_ms = 1000 * (time.perf_counter() - t0)
            except Exception as exc:
                self._stale = True  # SAM2 stores the points before it runs; the log does not have them
                raise _predictor_failed(exc) from None
            self._log_click(action)
            self.last_predictor_ms = round(predictor_ms, 2)  # the page shows it beside the server's time
            if changed_only:
                return {"frame": frame, "masks": changed_rles(before, self.masks[frame], object_id)}
            return {"frame": frame, "masks": frame_rles(self.masks[frame])}

    def set_subcategory(self, object_id: int, subcategory) -> dict:
        obj = self._object(object_id)
        if subcategory not in SUBCATEGORIES:
            raise BadRequest(f"subcategory {subcategory!r} is not one of the 11 taxonomy subcategories")
        obj["subcategory"] = subcategory
        self.save()
        return {"object_id": object_id, "subcategory": subcategory}

    def delete_object(self, object_id: int) -> dict:
        with self._editing():
            self._object(object_id)
            del self.objects[object_id]
            self.actions = self._drop_orphan_propagations(
                [a for a in self.actions if not (a["op"] == "prompt" and a["object_id"] == object_id)])
            self.save()
            self._rebuild()
            return {"frames": self.all_frames(), "objects": self.objects_json()}

    @staticmethod
    def _drop_orphan_propagations(actions: list[dict]) -> list[dict]:
        """A propagation before any prompt has nothing to track (SAM2 refuses it)."""
        out, prompted = [], False
        for a in actions:
            prompted |= a["op"] == "prompt"
            if a["op"] == "prompt" or prompted:
                out.append(a)
        return out

    def undo(self) -> dict:
        with self._editing():
            if not self.actions:
                raise BadRequest("nothing to undo")
            undone = self.actions.pop()
            if undone["op"] == "prompt" and not any(a["op"] == "prompt" and a["object_id"] == undone["object_id"]
                                                    for a in self.actions):
                self.objects.pop(undone["object_id"], None)  # its first prompt made it; undo unmakes it
            self.actions = self._drop_orphan_propagations(self.actions)
            self.save()
            self._rebuild()
            return {"undone": undone, "frames": self.all_frames(), "objects": self.objects_json()}

    def start_propagation(self, direction: str, start_frame=None) -> PropagationJob:
        if direction not in DIRECTIONS:
            raise BadRequest(f"direction {direction!r} is not one of both, forward, backward")
        if start_frame is not None:
            start_frame = self._check_frame(start_frame)
        with self._editing():
            prompt_frames = [a["frame"] for a in self.actions if a["op"] == "prompt"]
            if not prompt_frames:
                raise BadRequest("nothing to propagate: add a click or a box first")
            s = min(prompt_frames) if start_frame is None else start_frame
            sizes = {False: self.num_frames - s, True: s + 1 if s > 0 else 0}
            job = PropagationJob(DIRECTIONS[direction], start_frame, sum(sizes[r] for r in DIRECTIONS[direction]))
            self.job = job
        threading.Thread(target=self._propagate, args=(job,), name=f"propagate-{self.session_id}", daemon=True).start()
        return job

    def _propagate(self, job: PropagationJob) -> None:
        tracked: list[int | None] = [None, None]
        with self.lock:
            try:
                self._fresh()
                with inference_context(self.predictor):
                    for reverse in job.directions:
                        if job.cancel.is_set():
                            break
                        tracked[int(reverse)] = self._run_direction(reverse, job.start_frame, None, job)
            except Exception as exc:
                self._stale = True
                job.error = str(_predictor_failed(exc))
            if job.error is None and any(n is not None for n in tracked):
                self.actions.append({"op": "propagate", "start_frame": job.start_frame, "tracked": tracked,
                                     "direction": {(False,): "forward", (True,): "backward"}.get(job.directions, "both")})
                self.save()
            job.cancelled = job.cancel.is_set()
            job.finished.set()
        job.events.put({"type": "error", "detail": job.error} if job.error else
                       {"type": "done", "cancelled": job.cancelled, "done": job.done, "total": job.total})

    def cancel_propagation(self) -> bool:
        job = self.job
        if job is None or job.finished.is_set():
            return False
        job.cancel.set()
        return True

    # --- export ------------------------------------------------------------------------------

    def video_prompts(self) -> VideoPrompts:
        instances = {}
        for obj_id, obj in sorted(self.objects.items()):
            prompts = tuple(_prompt_of(a) for a in self.actions if a["op"] == "prompt" and a["object_id"] == obj_id)
            if not prompts:
                continue
            if obj.get("subcategory") is None:
                raise BadRequest(f"object {obj_id} has no subcategory: pick one before exporting")
            instances[obj_id] = InstancePrompts(obj["subcategory"], prompts)
        return VideoPrompts(instances)

    def canonical_actions(self, prompts: VideoPrompts) -> list[dict]:
        """The log of exactly the calls ``Sam2Session.run`` makes (so a rebuild equals the export)."""
        def prompt(obj_id, p: FramePrompt) -> dict:
            return {"op": "prompt", "object_id": obj_id, **p.to_json()}

        both = {"op": "propagate", "start_frame": None, "tracked": [self.num_frames, self.num_frames],
                "direction": "both"}
        actions = [prompt(i, inst.initial) for i, inst in prompts.instances.items()]
        corrections = [prompt(i, p) for i, inst in prompts.instances.items() for p in inst.corrections]
        if actions:
            actions.append(dict(both))
        if corrections:
            actions += corrections + [dict(both)]
        return actions

    def export(self, out: Path) -> dict:
        out = out.resolve()
        vid = self.entry.video_id
        mask_dir = (out / "masks" / vid).resolve()
        prompts_path = out / "prompts.json"
        if not mask_dir.is_relative_to(out):  # ids are checked at load; this is the second lock
            raise BadRequest(f"export path for {vid!r} would leave --out")
        with self._editing():
            prompts = self.video_prompts()
            check_against_video(prompts, vid, "session", self.num_frames, self.width, self.height)
            shown = self.masks.copy()
            try:
                with inference_context(self.predictor):
                    ann = self.sam.run(prompts)  # the annotate step's own replay
            except Exception as exc:
                self._stale = True
                raise _predictor_failed(exc) from None
            # run() left the predictor in the replay's state; the log now says so too.
            self.actions = self.canonical_actions(prompts)
            self.masks[:] = ann.masks
            self.save()
            changed = [int(t) for t in np.flatnonzero((shown != ann.masks).reshape(self.num_frames, -1).any(axis=1))]
            write_video_masks(mask_dir, ann.masks, ann.instances, {"rle.json": encode_coco_rle(ann.masks, ann.instances)})
            videos = dict(_existing_prompts(prompts_path).videos) if prompts_path.exists() else {}
            videos[vid] = prompts
            write_prompts(prompts_path, videos)
        return {"video_id": vid, "paths": {
                    "masks": [str(mask_dir / f"{t:05d}.png") for t in range(self.num_frames)],
                    "instances": str(mask_dir / "instances.json"), "rle": str(mask_dir / "rle.json"),
                    "prompts": str(prompts_path)},
                "instances": {str(k): v for k, v in sorted(ann.instances.items())},
                "frames_changed_by_replay": changed, "frames": self.all_frames(), "objects": self.objects_json()}


def _existing_prompts(path: Path) -> PromptsFile:
    try:
        return load_prompts(path)
    except BrokenVideosError as exc:
        raise BadRequest(f"cannot merge into the existing {exc}") from None
