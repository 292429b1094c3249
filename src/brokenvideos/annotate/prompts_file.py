"""The prompt file of the sam2 annotator: the clicks an annotator gave, kept as data.

The BrokenVideos SAM2-GUI records positive/negative clicks per instance, propagates, and refines
frame by frame. Storing those interactions in a versioned JSON file (rather than only their
resulting masks) makes an annotation reproducible: the same file and checkpoint give the same
masks, and a better model can re-run the same human effort. The format is
``brokenvideos/schemas/annotation_prompts.schema.json``; an example::

    {"version": 1,
     "videos": {"synthetic-upsampler-p0007": {"instances": {
        "1": {"subcategory": "visual_breakdown",
              "prompts": [{"frame": 0, "points": [[40, 32], [70, 20]], "labels": [1, 0]},
                          {"frame": 9, "points": [[44, 30]], "labels": [1]}]},
        "2": {"subcategory": "attribute_shift",
              "prompts": [{"frame": 3, "box": [10, 8, 30, 24]}]}}}}}

Frame 0 of instance 1 is its initial prompt; frame 9 is a correction after propagation.
Every error names the file and the JSON path of the offending value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from brokenvideos.errors import InputError
from brokenvideos.io.atomic import write_json
from brokenvideos.resources import resource_text

SCHEMA = "schemas/annotation_prompts.schema.json"  # package data
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FramePrompt:
    """Clicks and/or a box on one frame; coordinates in video pixels (x = column, y = row)."""

    frame: int
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()  # 1 = positive, 0 = negative; one per point
    box: tuple[float, float, float, float] | None = None

    def to_json(self) -> dict:
        doc: dict = {"frame": self.frame}
        if self.points:
            doc["points"] = [list(p) for p in self.points]
            doc["labels"] = list(self.labels)
        if self.box is not None:
            doc["box"] = list(self.box)
        return doc


@dataclass(frozen=True)
class InstancePrompts:
    subcategory: str
    prompts: tuple[FramePrompt, ...]

    @property
    def initial(self) -> FramePrompt:
        return self.prompts[0]

    @property
    def corrections(self) -> tuple[FramePrompt, ...]:
        return self.prompts[1:]


@dataclass(frozen=True)
class VideoPrompts:
    instances: dict[int, InstancePrompts]  # DAVIS id -> prompts


@dataclass(frozen=True)
class PromptsFile:
    path: Path
    videos: dict[str, VideoPrompts]

    def for_video(self, video_id: str) -> VideoPrompts | None:
        return self.videos.get(video_id)


def json_path(*keys) -> str:
    """``$.videos["a-b"].instances["1"].prompts[0]`` style path, for error messages."""
    out = "$"
    for k in keys:
        if isinstance(k, int):
            out += f"[{k}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            out += f".{k}"
        else:
            out += f"[{json.dumps(k)}]"
    return out


def prompt_path(video_id: str, instance_id: int, index: int, *rest) -> str:
    return json_path("videos", video_id, "instances", str(instance_id), "prompts", index, *rest)


def load_schema() -> dict:
    return json.loads(resource_text(SCHEMA))


def load_prompts(path) -> PromptsFile:
    """Read, validate (schema, then points/labels/box consistency) and convert to dataclasses."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "prompts file not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return parse_prompts(doc, path)


def parse_prompts(doc, path) -> PromptsFile:
    path = Path(path)
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(load_schema()).iter_errors(doc))
    if error is not None:
        raise InputError(path, f"{json_path(*error.absolute_path)}: {error.message}")
    videos = {}
    for video_id, video in doc["videos"].items():
        instances = {}
        for key, inst in video["instances"].items():
            prompts = tuple(_frame_prompt(p, path, prompt_path(video_id, int(key), k))
                            for k, p in enumerate(inst["prompts"]))
            instances[int(key)] = InstancePrompts(inst["subcategory"], prompts)
        videos[video_id] = VideoPrompts(dict(sorted(instances.items())))
    return PromptsFile(path, videos)


def _frame_prompt(doc: dict, path: Path, where: str) -> FramePrompt:
    points = tuple((float(x), float(y)) for x, y in doc.get("points", []))
    labels = tuple(int(v) for v in doc.get("labels", []))
    if len(points) != len(labels):
        raise InputError(path, f"{where}: {len(points)} points but {len(labels)} labels")
    box = doc.get("box")
    if box is not None:
        box = tuple(float(v) for v in box)
        if not (box[0] < box[2] and box[1] < box[3]):
            raise InputError(path, f"{where}.box: must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got {list(box)}")
    if not points and box is None:
        raise InputError(path, f"{where}: needs at least one point or a box")
    return FramePrompt(int(doc["frame"]), points, labels, box)


def check_against_video(prompts: VideoPrompts, video_id: str, source, num_frames: int, width: int, height: int) -> None:
    """Frames and coordinates must fall inside the video: a typo should fail, not track nothing."""
    for inst_id, inst in prompts.instances.items():
        for k, p in enumerate(inst.prompts):
            where = prompt_path(video_id, inst_id, k)
            if p.frame >= num_frames:
                raise InputError(source, f"{where}.frame: {p.frame} is past the last frame ({num_frames - 1})")
            coords = list(p.points) + ([p.box[:2], p.box[2:]] if p.box is not None else [])
            for x, y in coords:
                if x > width or y > height:
                    raise InputError(source, f"{where}: point ({x:g}, {y:g}) is outside the {width}x{height} frame")


def to_document(videos: dict[str, VideoPrompts]) -> dict:
    def instance(inst: InstancePrompts) -> dict:
        return {"subcategory": inst.subcategory, "prompts": [p.to_json() for p in inst.prompts]}

    return {
        "version": FORMAT_VERSION,
        "videos": {vid: {"instances": {str(i): instance(inst) for i, inst in sorted(vp.instances.items())}}
                   for vid, vp in sorted(videos.items())},
    }


def write_prompts(path, videos: dict[str, VideoPrompts]) -> None:
    """Save prompts (e.g. simulated clicks) so they can be replayed as a prompts_file."""
    write_json(path, to_document(videos))
