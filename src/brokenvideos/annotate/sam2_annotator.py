"""The ``sam2`` annotator: SAM2's video predictor driven by stored or simulated clicks.

This replays the BrokenVideos SAM2-GUI workflow without a GUI: per instance, clicks/box on one
frame, propagation through the video (forward and backward), then correction clicks on later
frames and a second propagation. The predictor does the work; this wrapper only

* builds it from a sam2 package config and a checkpoint (never silently untrained),
* hands it the frames the way ``init_state`` wants them (a folder of ``00000.jpg`` …),
* merges the per-instance logits into one DAVIS id map (higher logit wins an overlap).

Config ``annotate.sam2``::

    config: configs/sam2.1/sam2.1_hiera_t.yaml   # a config shipped in the sam2 package
    checkpoint: models/sam2.1_hiera_tiny.pt      # from the SAM2 release (README of facebookresearch/sam2)
    allow_random_weights: false                  # with checkpoint: null, an untrained model (tests only)
    image_size: 1024                             # optional override, multiple of 32 (e.g. 256 on CPU)
    device: auto                                 # auto | cpu | cuda
    prompts_file: data/annotation_prompts.json   # clicks to replay, or:
    simulate: {clicks: 3, gt_root: results/generated_masks}  # clicks from exact masks
    offload_video_to_cpu: false
    offload_state_to_cpu: false

Correction clicks are made conditioning frames (``add_all_frames_to_correct_as_cond``, as SAM2's
own MOSE evaluation config does): with SAM2's default they are overwritten by the next
propagation from the first prompted frame, and a refinement would be lost.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from brokenvideos.annotate.base import Annotation, Annotator
from brokenvideos.annotate.prompts_file import FramePrompt, VideoPrompts, check_against_video, load_prompts
from brokenvideos.annotate.simulated import Click, simulate_video_prompts
from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io.masks import read_instances, read_video_masks
from brokenvideos.io.video import read_video
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
CHECKPOINTS_URL = "https://github.com/facebookresearch/sam2#download-checkpoints"
JPEG_QUALITY = 95


@dataclass(frozen=True)
class Sam2Settings:
    config: str = DEFAULT_CONFIG
    checkpoint: str | None = None
    allow_random_weights: bool = False
    image_size: int | None = None
    device: str = "auto"
    prompts_file: str | None = None
    simulate_clicks: int | None = None
    simulate_gt_root: str | None = None
    offload_video_to_cpu: bool = False
    offload_state_to_cpu: bool = False

    @classmethod
    def from_config(cls, section: dict | None, require_prompts: bool = True) -> Sam2Settings:
        """``require_prompts=False`` for interactive use (annotate-ui), where a person makes them."""
        section = dict(section or {})
        simulate = section.pop("simulate", None) or {}
        known = set(cls.__dataclass_fields__) - {"simulate_clicks", "simulate_gt_root"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise BrokenVideosError(f"annotate.sam2: unknown keys {unknown}")
        if "checkpoint" not in section:  # untrained weights only when asked for explicitly
            where = _where_to_get(section.get("config", DEFAULT_CONFIG))
            raise BrokenVideosError(f"annotate.sam2.checkpoint is not set: {where}")
        settings = cls(**section, simulate_clicks=simulate.get("clicks"), simulate_gt_root=simulate.get("gt_root"))
        settings.check(require_prompts)
        return settings

    def check(self, require_prompts: bool = True) -> None:
        if self.image_size is not None and (self.image_size < 64 or self.image_size % 32):
            raise BrokenVideosError(f"annotate.sam2.image_size: {self.image_size} must be a multiple of 32, >= 64")
        if self.device not in ("auto", "cpu", "cuda"):
            raise BrokenVideosError(f"annotate.sam2.device: {self.device!r} is not one of auto, cpu, cuda")
        if require_prompts and (self.prompts_file is None) == (self.simulate_clicks is None):
            raise BrokenVideosError("annotate.sam2: set exactly one of prompts_file and simulate.clicks")
        if self.simulate_clicks is not None and self.simulate_clicks < 1:
            raise BrokenVideosError("annotate.sam2.simulate.clicks: must be >= 1")


def _checkpoint_name(config: str) -> str:
    """The release checkpoint that matches a sam2 config (e.g. sam2.1_hiera_tiny.pt)."""
    try:
        from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES

        return dict(HF_MODEL_ID_TO_FILENAMES.values())[config]
    except (ImportError, KeyError):
        return "the SAM2 checkpoint matching " + config


def _where_to_get(config: str) -> str:
    return (f"download {_checkpoint_name(config)} (SAM2 release checkpoints, {CHECKPOINTS_URL}) "
            f"and set annotate.sam2.checkpoint to its path")


def _check_checkpoint(s: Sam2Settings) -> None:
    """Fail before any work, in one line, with the file and where to get it."""
    if s.checkpoint is None:
        if not s.allow_random_weights:
            raise BrokenVideosError(f"annotate.sam2.checkpoint is null: {_where_to_get(s.config)} "
                                    "(checkpoint: null needs allow_random_weights: true, for tests only)")
        log.warning("annotate.sam2: checkpoint null and allow_random_weights: building an UNTRAINED SAM2 model")
    elif not Path(s.checkpoint).is_file():
        raise InputError(s.checkpoint, f"SAM2 checkpoint not found; {_where_to_get(s.config)}")


def _device(requested: str):
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise BrokenVideosError("annotate.sam2.device: cuda requested but torch sees no GPU")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def build_predictor(s: Sam2Settings):
    """SAM2's own factory; our additions are the size override and persistent corrections."""
    _check_checkpoint(s)
    try:
        from hydra.errors import MissingConfigException
        from sam2.build_sam import build_sam2_video_predictor
    except ImportError as exc:
        raise BrokenVideosError(f"annotate.sam2 needs the sam2 package ({exc}): "
                                "pip install 'brokenvideos[sam2]'") from None
    overrides = ["++model.add_all_frames_to_correct_as_cond=true"]
    if s.image_size is not None:
        overrides.append(f"++model.image_size={s.image_size}")
    try:
        predictor = build_sam2_video_predictor(s.config, s.checkpoint, device=_device(s.device),
                                               hydra_overrides_extra=overrides)
    except MissingConfigException:
        raise BrokenVideosError(f"annotate.sam2.config: {s.config!r} is not a config of the sam2 package "
                                f"(e.g. {DEFAULT_CONFIG})") from None
    except Exception as exc:  # the untrained model builds, so with a checkpoint the file is at fault
        if s.checkpoint is None:
            raise
        detail = " ".join(str(exc).split())[:200]  # state_dict errors span lines; keep one
        problem = f"not a SAM2 checkpoint for {s.config} ({exc.__class__.__name__}: {detail})"
        raise InputError(s.checkpoint, problem) from None
    if predictor.device.type == "cpu":
        predictor.memory_attention.register_forward_pre_hook(_memory_in_query_dtype, with_kwargs=True)
    return predictor


def _memory_in_query_dtype(module, args, kwargs):
    """SAM2 stores memories in bfloat16 and relies on CUDA autocast to mix them with float32
    features. On CPU there is no autocast, and a frame whose only memory is a bfloat16 one (an
    instance tracked before the frame it was prompted on) fails with "mat1 and mat2 must have the
    same dtype" (facebookresearch/sam2 issues 308, 577). Cast the memory to the query's dtype."""
    curr = kwargs["curr"][0] if isinstance(kwargs["curr"], list) else kwargs["curr"]
    for key in ("memory", "memory_pos"):
        if kwargs.get(key) is not None and kwargs[key].dtype != curr.dtype:
            kwargs[key] = kwargs[key].to(curr.dtype)
    return args, kwargs


def write_jpeg_frames(frames: np.ndarray, directory: Path) -> None:
    """The layout SAM2's ``init_state`` reads: integer-named JPEGs, 00000.jpg …"""
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(directory / f"{t:05d}.jpg", quality=JPEG_QUALITY)


def merge_logits(logits, obj_ids: list[int]) -> np.ndarray:
    """N×1×H×W logits -> H×W uint8 ids; a pixel goes to its highest-logit object if that is > 0."""
    best, index = logits[:, 0].max(dim=0)
    # The id lookup in numpy: on a click's frame in annotate-ui, 0.1 ms less than a torch gather
    # (issue 14's click budget). The threshold stays in torch, which also takes bfloat16 (GPU).
    ids = np.asarray(obj_ids, dtype=np.uint8)[index.cpu().numpy()]
    ids[(best <= 0).cpu().numpy()] = 0
    return ids


@contextlib.contextmanager
def inference_context(predictor):
    """How every predictor call runs (the annotate step and annotate-ui share it)."""
    import torch

    with contextlib.ExitStack() as stack:
        if predictor.device.type == "cuda":  # SAM2's recommended inference precision on GPU
            stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
        # Hole filling needs SAM2's optional CUDA extension; without it SAM2 warns on every frame
        # and skips a cosmetic step (safe to ignore, says SAM2's INSTALL.md).
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message=r"cannot import name '_C'", category=UserWarning)
        yield


class Sam2Session:
    """One video loaded into the predictor; ``run`` may be called repeatedly (state is reset)."""

    def __init__(self, predictor, frames_dir: Path, num_frames: int, height: int, width: int, s: Sam2Settings):
        self.predictor = predictor
        self.num_frames, self.height, self.width = num_frames, height, width
        self.state = predictor.init_state(str(frames_dir), offload_video_to_cpu=s.offload_video_to_cpu,
                                          offload_state_to_cpu=s.offload_state_to_cpu)

    def _add(self, obj_id: int, p: FramePrompt, clear: bool = True):
        return self.predictor.add_new_points_or_box(
            self.state, frame_idx=p.frame, obj_id=obj_id,
            points=[list(pt) for pt in p.points] if p.points else None,
            labels=list(p.labels) if p.points else None,
            box=list(p.box) if p.box is not None else None,
            clear_old_points=clear or p.box is not None,
        )

    def predict_instance(self, obj_id: int, frame: int, clicks: list[Click]) -> np.ndarray:
        """The mask SAM2 gives for these clicks alone on one frame (the simulated annotator's view)."""
        self.predictor.reset_state(self.state)
        p = FramePrompt(frame, tuple((c.x, c.y) for c in clicks), tuple(int(c.positive) for c in clicks))
        _, _, logits = self._add(obj_id, p)
        return (logits[0, 0] > 0).cpu().numpy()

    def _propagate(self, masks: np.ndarray) -> None:
        for reverse in (False, True):
            for t, obj_ids, logits in self.predictor.propagate_in_video(self.state, reverse=reverse):
                masks[t] = merge_logits(logits, obj_ids)

    def run(self, prompts: VideoPrompts) -> Annotation:
        masks = np.zeros((self.num_frames, self.height, self.width), np.uint8)
        self.predictor.reset_state(self.state)
        if not prompts.instances:
            return Annotation(masks, {})
        for obj_id, inst in prompts.instances.items():
            self._add(obj_id, inst.initial)
        self._propagate(masks)
        corrections = [(i, p) for i, inst in prompts.instances.items() for p in inst.corrections]
        for obj_id, p in corrections:
            self._add(obj_id, p, clear=False)
        if corrections:
            self._propagate(masks)
        present = set(np.unique(masks).tolist())
        lost = sorted(set(prompts.instances) - present)
        if lost:
            log.warning("sam2: instances %s got no pixels in any frame; left out of instances.json", lost)
        return Annotation(masks, {i: inst.subcategory for i, inst in prompts.instances.items() if i in present})


class Sam2Annotator(Annotator):
    method = "sam2"

    def __init__(self, annotate_cfg: dict, results: str):
        super().__init__(annotate_cfg, results)
        self.settings = Sam2Settings.from_config(annotate_cfg.get("sam2"))
        self.prompts = load_prompts(self.settings.prompts_file) if self.settings.prompts_file else None
        self.predictor = build_predictor(self.settings)

    def _inference(self):
        return inference_context(self.predictor)

    @contextlib.contextmanager
    def session(self, video: dict):
        """Decode the video, hand SAM2 its JPEG folder, yield a ``Sam2Session``."""
        frames = read_video(video["path"])
        t, h, w, _ = frames.shape
        with tempfile.TemporaryDirectory(prefix="brokenvideos-sam2-") as tmp, self._inference():
            write_jpeg_frames(frames, Path(tmp))
            del frames
            yield Sam2Session(self.predictor, Path(tmp), t, h, w, self.settings)

    def prompts_for(self, video: dict, session: Sam2Session) -> VideoPrompts:
        """The video's prompts from the prompts file, or simulated from its exact masks."""
        if self.prompts is None:
            return self.simulate(video, session, self.settings.simulate_clicks)
        vid = video["video_id"]
        prompts = self.prompts.for_video(vid)
        if prompts is None:
            if video.get("label") == "broken":
                raise InputError(self.prompts.path, f"no prompts for broken video {vid!r} "
                                 "(list it with \"instances\": {} if it has nothing to mask)")
            prompts = VideoPrompts({})
        check_against_video(prompts, vid, self.prompts.path, session.num_frames, session.width, session.height)
        return prompts

    def gt_dir(self, video_id: str) -> Path:
        root = self.settings.simulate_gt_root
        return Path(root) / video_id if root else ResultPaths(self.results).generated_masks(video_id)

    def simulate(self, video: dict, session: Sam2Session, clicks: int) -> VideoPrompts:
        """Clicks from the exact masks, placed by the simulated annotator against SAM2's own output."""
        gt_dir = self.gt_dir(video["video_id"])
        gt = read_video_masks(gt_dir, num_frames=session.num_frames, size=(session.height, session.width))
        return simulate_video_prompts(gt, read_instances(gt_dir), clicks, session.predict_instance)

    def annotate(self, video: dict) -> Annotation:
        with self.session(video) as session:
            return session.run(self.prompts_for(video, session))
