"""The "diffusers" backend: any text-to-video ``DiffusionPipeline`` checkpoint behind ``VideoGenerator``.

Design choices, and why:

* One loading path. Hub ids, local snapshots and the tests' tiny pipeline all go through
  ``DiffusionPipeline.from_pretrained(model, dtype, variant, revision)``, so what the tests exercise
  is exactly what a user's checkpoint takes.
* Missing weights stop the step at construction with one actionable line (which model, how to get a
  local copy, which config key to point at it). Nothing falls back to another model or to random
  weights: a dataset silently built from the wrong generator is worse than no dataset.
* Every video is reproducible from its manifest row. Each prompt gets its own CPU
  ``torch.Generator`` seeded with the per-video seed (CPU, so the initial noise does not depend on
  the GPU model, as diffusers' reproducibility guide recommends), and ``params`` records everything
  that enters the pipeline call; ``config_from_params`` turns a row back into a generator entry.
  Batching only changes float rounding (BLAS blocking depends on the batch shape), so bit-identical
  regeneration needs the recorded ``batch_len``; different batch sizes agree to ±1 grey level.
* A failure belongs to one video. If a batch fails (typically CUDA out-of-memory) its prompts are
  retried one by one and only the video that still fails is returned as an Exception.
* Generator entries may name a ``preset:`` from brokenvideos/presets/diffusers_presets.yaml (the model cards'
  recommended settings); the entry's own keys override it (``resolve_preset``).
"""

from __future__ import annotations

import copy
import gc
import inspect
import logging
from pathlib import Path

import numpy as np
import yaml

from brokenvideos.errors import BrokenVideosError
from brokenvideos.generators.base import GeneratedVideo, VideoGenerator
from brokenvideos.resources import resource_path

log = logging.getLogger(__name__)

PRESETS_PATH = resource_path("presets/diffusers_presets.yaml")  # package data
DTYPES = ("float32", "float16", "bfloat16")
MEMORY_KEYS = ("cpu_offload", "vae_tiling", "vae_slicing")
# Keys whose mapping values merge key by key with a preset's (all other keys replace the preset's value).
_MERGED_MAPPINGS = ("memory", "pipeline_kwargs", "dtype")
# Call arguments the backend itself owns; pipeline_kwargs may not set them.
_RESERVED_CALL_ARGS = ("prompt", "generator", "output_type", "negative_prompt", "return_dict")
# Call arguments every text-to-video pipeline takes, always passed explicitly (and recorded).
_CORE_CALL_ARGS = ("height", "width", "num_frames", "num_inference_steps", "guidance_scale")


# ---------------------------------------------------------------- presets


def load_presets(path: Path = PRESETS_PATH) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise BrokenVideosError(f"{path}: diffusers presets file not found") from None
    except yaml.YAMLError as exc:
        raise BrokenVideosError(f"{path}: not valid YAML ({exc})") from None
    presets = (data or {}).get("presets")
    if not isinstance(presets, dict):
        raise BrokenVideosError(f"{path}: expected a top-level 'presets:' mapping")
    return presets


def resolve_preset(gen_cfg: dict, presets: dict | None = None) -> dict:
    """Return ``gen_cfg`` with its ``preset:`` expanded (a new dict; ``gen_cfg`` is not modified).

    The preset's values come first and the entry's own keys override them. ``memory``,
    ``pipeline_kwargs`` and a mapping ``dtype`` merge key by key, so overriding one memory switch
    keeps the others. ``scheduler`` merges its ``kwargs`` when the class stays the same; naming a
    different class replaces the preset's scheduler entirely (its kwargs would not apply). A value of
    ``null`` removes the preset's setting (e.g. ``negative_prompt: null``, ``scheduler: null``).
    """
    name = gen_cfg.get("preset")
    if not name:
        return copy.deepcopy(gen_cfg)
    presets = load_presets() if presets is None else presets
    if name not in presets:
        raise BrokenVideosError(
            f"generator {gen_cfg.get('name')!r}: unknown diffusers preset {name!r} "
            f"(known: {', '.join(sorted(presets))}; defined in {PRESETS_PATH})"
        )
    merged = copy.deepcopy(presets[name])
    for key, value in gen_cfg.items():
        base = merged.get(key)
        if key in _MERGED_MAPPINGS and isinstance(base, dict) and isinstance(value, dict):
            merged[key] = {**base, **value}
        elif key == "scheduler" and isinstance(base, dict) and isinstance(value, dict) and (
            value.get("class", base.get("class")) == base.get("class")
        ):
            merged[key] = {
                "class": base.get("class"),
                "kwargs": {**(base.get("kwargs") or {}), **(value.get("kwargs") or {})},
            }
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# ---------------------------------------------------------------- helpers


def _dtype_kwarg() -> str:
    """diffusers renamed ``from_pretrained(torch_dtype=)`` to ``dtype=`` (the old name now warns and
    goes away in 1.0); use whichever the installed version takes."""
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


def _torch_dtype(spec, where: str):
    """``float16`` → torch.float16; a mapping {default: bfloat16, vae: float32} → per-component dict."""
    import torch

    def one(name):
        if name not in DTYPES:
            raise BrokenVideosError(f"{where}: dtype {name!r} is not one of {', '.join(DTYPES)}")
        return getattr(torch, name)

    if isinstance(spec, dict):
        return {component: one(name) for component, name in spec.items()}
    return one(spec)


def _resolve_model(model: str) -> tuple[str, bool]:
    """(what to pass to from_pretrained, is it a local directory).

    An existing directory is local; relative paths are taken from the working directory (where
    Snakemake runs the steps) and kept relative, so manifests stay comparable across checkouts.
    Anything else is a hub id.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path), True
    return model, False


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model


def _hub_commit(repo_id: str, revision: str | None) -> str | None:
    """The snapshot commit a cached hub model resolved to (provenance only; None if unknown)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo_id, "model_index.json", revision=revision)
    except Exception:  # noqa: BLE001 - best-effort metadata, never decides what gets loaded
        return None
    return Path(hit).parent.name if isinstance(hit, str) else None


def _load_errors() -> tuple[type[BaseException], ...]:
    """The exceptions from_pretrained raises when weights are missing or unreachable."""
    errors: list[type[BaseException]] = [OSError]  # EnvironmentError is OSError
    try:
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

        errors += [LocalEntryNotFoundError, HfHubHTTPError, HFValidationError]
    except ImportError:
        pass
    return tuple(errors)


def _first_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _missing_weights_message(gen_name: str, model: str, revision: str | None, exc: BaseException) -> str:
    rev = f" --revision {revision}" if revision else ""
    local = f"/path/to/{model.rstrip('/').split('/')[-1]}"
    return (
        f"generator {gen_name!r}: diffusers model {model!r} is not in the local Hugging Face cache and "
        f"could not be downloaded ({type(exc).__name__}: {_first_line(exc)}). Fix: on a machine with "
        f"network access run `huggingface-cli download {model}{rev} --local-dir {local}` "
        "(`hf download ...` with huggingface_hub >= 1.0), "
        f"copy that directory here and set `model: {local}` for generator {gen_name!r} "
        f"(generators[].model) in the config."
    )


def is_oom(exc: BaseException) -> bool:
    """CUDA out-of-memory, however the installed torch spells it."""
    import torch

    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None)) if t)
    return isinstance(exc, oom_types) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def to_uint8_frames(video) -> np.ndarray:
    """One video as a pipeline returns it (``output_type="np"``) → T×H×W×3 uint8 RGB.

    Floats in [0, 1] are scaled with the same rounding diffusers uses for PIL output, so frames match
    what ``export_to_video`` would write. Lists of frames (PIL or arrays) and T×C×H×W are accepted too
    because a few pipelines ignore ``output_type``.
    """
    if isinstance(video, (list, tuple)):
        video = np.stack([np.asarray(frame) for frame in video])
    elif hasattr(video, "detach"):  # torch tensor
        video = video.detach().float().cpu().numpy()
    arr = np.asarray(video)
    if arr.ndim != 4:
        raise ValueError(f"expected one video as T×H×W×C frames, got shape {arr.shape}")
    if arr.shape[-1] not in (1, 3, 4) and arr.shape[1] in (1, 3, 4):
        arr = arr.transpose(0, 2, 3, 1)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        arr = arr[..., :3]
    return np.ascontiguousarray(arr)


# Pipelines that document rounding num_frames to k·t + 1 themselves (a warning, then the rounded count).
_ROUNDS_FRAMES = ("WanPipeline",)


def _geometry_factors(pipe) -> tuple[int, int]:
    """(temporal, spatial): num_frames must be k·temporal + 1 and height/width multiples of spatial
    (the VAE's compression times the transformer's patch size)."""
    temporal = getattr(pipe, "vae_scale_factor_temporal", None) or getattr(pipe, "vae_temporal_compression_ratio", None)
    spatial = (getattr(pipe, "vae_scale_factor_spatial", None) or getattr(pipe, "vae_spatial_compression_ratio", None)
               or getattr(pipe, "vae_scale_factor", None) or 1)
    denoiser = getattr(pipe, "transformer", None)
    patch = getattr(getattr(denoiser, "config", None), "patch_size", None) or 1
    patch = patch[-1] if isinstance(patch, (list, tuple)) else patch
    temporal = int(temporal or 1)
    if type(pipe).__name__ == "CogVideoXPipeline" and getattr(getattr(denoiser, "config", None), "patch_size_t", None) is None:
        # CogVideoX 1.0's VAE decodes 4k+1 frames only from an odd latent count: num_frames = 8k+1
        # (13 frames came back as 16)
        temporal *= 2
    return temporal, int(spatial) * int(patch)


def _check_geometry(pipe, args: dict, where: str) -> dict:
    """The frame count and size this pipeline accepts, checked before any work: an impossible value
    is an error; a rounding the pipeline documents is applied here, so the manifest records it."""
    temporal, spatial = _geometry_factors(pipe)
    name = type(pipe).__name__
    bad = [k for k in ("height", "width") if args[k] % spatial]
    if bad:
        raise BrokenVideosError(f"{where}: {name} needs height and width divisible by {spatial}, got "
                                f"{args['width']}x{args['height']}")
    n = args["num_frames"]
    if temporal > 1 and (n - 1) % temporal:
        if name in _ROUNDS_FRAMES:
            rounded = n // temporal * temporal + 1
            log.warning("%s: %s rounds num_frames %d to %d (%d·k + 1); recording %d", where, name, n, rounded,
                        temporal, rounded)
            return {"num_frames": rounded}
        lower = (n - 1) // temporal * temporal + 1
        raise BrokenVideosError(f"{where}: {name} needs num_frames = {temporal}·k + 1, got {n} "
                                f"(use {lower} or {lower + temporal})")
    return {}


def _prediction_signature(scheduler) -> dict:
    """How a scheduler reads the model's output: flow matching or not, and its flow settings."""
    cfg = dict(scheduler.config)
    flow = type(scheduler).__name__.startswith("FlowMatch") or bool(cfg.get("use_flow_sigmas")) \
        or cfg.get("prediction_type") == "flow_prediction"
    shift = cfg.get("flow_shift", cfg.get("shift"))
    return {"flow_matching": flow, "prediction_type": "flow_prediction" if flow else cfg.get("prediction_type", "epsilon"),
            "flow_shift": float(shift) if flow and shift is not None else None,
            "use_dynamic_shifting": bool(cfg.get("use_dynamic_shifting")) if flow else None}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _call_parameters(pipe) -> tuple[dict[str, inspect.Parameter], bool]:
    params = inspect.signature(pipe.__call__).parameters
    return dict(params), any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _versions() -> dict:
    import diffusers
    import torch

    out = {"diffusers_version": diffusers.__version__, "torch_version": torch.__version__}
    try:
        import transformers

        out["transformers_version"] = transformers.__version__
    except ImportError:
        pass
    return out


# ---------------------------------------------------------------- the generator


class DiffusersGenerator(VideoGenerator):
    """Text-to-video through a diffusers pipeline. See the module docstring for the contract.

    gen_cfg keys (after ``resolve_preset``): model (required), revision, variant, dtype (float32 |
    float16 | bfloat16, or {default: …, <component>: …}), device (auto | cpu | cuda | cuda:N),
    scheduler {class, kwargs}, num_inference_steps, guidance_scale, negative_prompt, height, width,
    num_frames, fps (override the config's ``video:``), batch_size, memory {cpu_offload (bool |
    "sequential"), vae_tiling, vae_slicing}, pipeline_kwargs (extra pipeline-call arguments).
    """

    backend = "diffusers"

    def __init__(self, gen_cfg: dict, video_cfg: dict, run_seed: int):
        super().__init__(gen_cfg, video_cfg, run_seed)
        cfg = resolve_preset(gen_cfg)
        self.cfg = cfg
        where = f"generator {self.name!r}"
        if not cfg.get("model"):
            raise BrokenVideosError(
                f"{where}: backend diffusers needs `model:` (a hub id or a local directory) or a `preset:`"
            )

        import torch

        device = cfg.get("device") or "auto"
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else str(device)
        # On a CPU, torch's float reductions depend on the thread count (Snakemake sets it per job):
        # a fixed, recorded count makes a video reproducible from its manifest row.
        self.cpu_threads = int(cfg.get("cpu_threads") or 1) if self.device == "cpu" else None
        if self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)
        self._batch_size = int(cfg.get("batch_size") or 1)
        if self._batch_size < 1:
            raise BrokenVideosError(f"{where}: batch_size must be >= 1")

        self.pipe, model_path, commit = self._load(cfg, where)
        self.pipe.set_progress_bar_config(disable=True)  # shard logs, not progress bars
        scheduler_kwargs = self._apply_scheduler(cfg.get("scheduler"), where)
        memory = self._apply_memory(cfg.get("memory") or {}, where)
        self._call_kwargs, self.negative_prompt = self._call_arguments(cfg, video_cfg, where)
        self.fps = int(cfg.get("fps") or video_cfg["fps"])
        self._static_params = {
            "backend": self.backend,
            "preset": cfg.get("preset"),
            "model": cfg["model"],
            "model_path": model_path,
            "revision": cfg.get("revision"),
            "commit": commit,
            "variant": cfg.get("variant"),
            "dtype": copy.deepcopy(cfg.get("dtype") or "float32"),
            "device": self.device,
            "cpu_threads": self.cpu_threads,
            "pipeline_class": type(self.pipe).__name__,
            "scheduler": {"class": type(self.pipe.scheduler).__name__, "kwargs": scheduler_kwargs,
                          "config": _jsonable(dict(self.pipe.scheduler.config))},
            "memory": memory,
            **{k: self._call_kwargs[k] for k in _CORE_CALL_ARGS},
            "negative_prompt": self.negative_prompt,
            "fps": self.fps,
            "pipeline_kwargs": {k: v for k, v in self._call_kwargs.items() if k not in _CORE_CALL_ARGS},
            "generator_device": "cpu",
            **_versions(),
        }

    # -- construction steps

    def _load(self, cfg: dict, where: str):
        """(pipeline, local directory or None, hub snapshot commit or None)."""
        from diffusers import DiffusionPipeline

        model = str(cfg["model"])
        ref, is_local = _resolve_model(model)
        if not is_local and _looks_like_path(model):
            raise BrokenVideosError(
                f"{where}: model directory {model!r} does not exist (relative paths are taken from {Path.cwd()})"
            )
        kwargs = {
            _dtype_kwarg(): _torch_dtype(cfg.get("dtype") or "float32", where),
            "variant": cfg.get("variant"),
            "revision": cfg.get("revision"),
        }
        try:
            pipe = DiffusionPipeline.from_pretrained(ref, **kwargs)
        except _load_errors() as exc:
            if is_local:
                raise BrokenVideosError(
                    f"{where}: cannot load the diffusers pipeline in {ref} ({type(exc).__name__}: "
                    f"{_first_line(exc)}); it must be a complete snapshot with model_index.json "
                    "(e.g. from `huggingface-cli download <id> --local-dir <dir>`)"
                ) from exc
            raise BrokenVideosError(_missing_weights_message(self.name, model, cfg.get("revision"), exc)) from exc
        if is_local:
            return pipe, ref, None
        return pipe, None, _hub_commit(model, cfg.get("revision"))

    def _apply_scheduler(self, sched_cfg: dict | None, where: str) -> dict:
        """Swap in ``scheduler.class`` built from the checkpoint's scheduler config + ``kwargs``."""
        if not sched_cfg:
            return {}
        import diffusers

        unknown = set(sched_cfg) - {"class", "kwargs"}
        if unknown:
            raise BrokenVideosError(f"{where}: scheduler: unknown keys {sorted(unknown)} (expected class, kwargs)")
        name = sched_cfg.get("class") or type(self.pipe.scheduler).__name__
        cls = getattr(diffusers, name, None)
        if cls is None or not hasattr(cls, "from_config"):
            raise BrokenVideosError(f"{where}: scheduler.class {name!r} is not a diffusers scheduler")
        kwargs = dict(sched_cfg.get("kwargs") or {})
        new = cls.from_config(self.pipe.scheduler.config, **kwargs)
        before, after = _prediction_signature(self.pipe.scheduler), _prediction_signature(new)
        changed = {k: (before[k], after[k]) for k in before
                   if before[k] != after[k] and k not in kwargs and None not in (before[k], after[k])}
        if changed:  # e.g. UniPC from a FlowMatchEuler config: an epsilon solver on a flow model
            detail = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise BrokenVideosError(
                f"{where}: scheduler.class {name} would change how the model's output is read ({detail}); "
                f"set them explicitly in scheduler.kwargs if that is intended"
            )
        self.pipe.scheduler = new
        return kwargs

    def _apply_memory(self, memory: dict, where: str) -> dict:
        """Place the pipeline on the device, with the requested offload / VAE tiling / slicing.

        Returns the settings in effect (recorded: VAE tiling changes the decoded pixels). Offloading
        is numerically transparent, so on a CPU-only run it is skipped with a warning.
        """
        unknown = set(memory) - set(MEMORY_KEYS)
        if unknown:
            raise BrokenVideosError(
                f"{where}: memory: unknown keys {sorted(unknown)} (expected {', '.join(MEMORY_KEYS)})"
            )
        offload = memory.get("cpu_offload", False)
        if offload not in (False, True, "model", "sequential", None):
            raise BrokenVideosError(f"{where}: memory.cpu_offload must be true, false or 'sequential'")
        if offload and self.device == "cpu":
            log.warning("%s: memory.cpu_offload ignored on a CPU-only run", where)
            offload = False
        if offload == "sequential":
            self.pipe.enable_sequential_cpu_offload(device=self.device)
        elif offload:
            self.pipe.enable_model_cpu_offload(device=self.device)
        else:
            self.pipe.to(self.device)
        for key, method in (("vae_tiling", "enable_tiling"), ("vae_slicing", "enable_slicing")):
            if memory.get(key):
                vae = getattr(self.pipe, "vae", None)
                if not hasattr(vae, method):
                    raise BrokenVideosError(
                        f"{where}: memory.{key}: {type(self.pipe).__name__} has no VAE supporting it"
                    )
                getattr(vae, method)()
        return {"cpu_offload": offload or False, "vae_tiling": bool(memory.get("vae_tiling")),
                "vae_slicing": bool(memory.get("vae_slicing"))}

    def _call_arguments(self, cfg: dict, video_cfg: dict, where: str) -> tuple[dict, str | None]:
        """Every pipeline-call argument made explicit (defaults read from the pipeline's signature),
        checked against the signature so a misspelt or unsupported key fails now, not mid-shard."""
        params, takes_any = _call_parameters(self.pipe)
        args = {
            "height": int(cfg.get("height") or video_cfg["height"]),
            "width": int(cfg.get("width") or video_cfg["width"]),
            "num_frames": int(cfg.get("num_frames") or video_cfg["num_frames"]),
        }
        for key in ("num_inference_steps", "guidance_scale"):
            value = cfg.get(key)
            if value is None:
                default = params[key].default if key in params else inspect.Parameter.empty
                if default is inspect.Parameter.empty or default is None:
                    raise BrokenVideosError(f"{where}: set {key} ({type(self.pipe).__name__} has no default for it)")
                value = default
            args[key] = value
        extra = dict(cfg.get("pipeline_kwargs") or {})
        clash = sorted(set(extra) & (set(_RESERVED_CALL_ARGS) | set(args)))
        if clash:
            raise BrokenVideosError(
                f"{where}: pipeline_kwargs may not set {clash} (use the generator's own keys for those)"
            )
        args.update(extra)
        args.update(_check_geometry(self.pipe, args, where))
        negative = cfg.get("negative_prompt")
        needed = ["prompt", "generator", "output_type", *args] + (["negative_prompt"] if negative is not None else [])
        unsupported = [k for k in needed if k not in params]
        if unsupported and not takes_any:
            raise BrokenVideosError(
                f"{where}: {type(self.pipe).__name__} does not accept {unsupported}; "
                "remove them from the generator entry"
            )
        return args, negative

    # -- generation

    def batch_size(self) -> int:
        return self._batch_size

    @property
    def call_kwargs(self) -> dict:
        """The fixed pipeline-call arguments (everything except prompt, negative_prompt, generator,
        output_type), for benchmarks and debugging."""
        return copy.deepcopy(self._call_kwargs)

    def describe(self) -> dict:
        keys = ("backend", "preset", "model", "model_path", "revision", "commit", "pipeline_class", "dtype",
                "device", "diffusers_version")
        return {k: self._static_params[k] for k in keys}

    def generate(self, prompt: dict, seed: int) -> GeneratedVideo:
        return self._render([prompt], [seed])[0]

    def generate_batch(self, prompts: list[dict], seeds: list[int]) -> list[GeneratedVideo | Exception]:
        """``batch_size`` prompts per pipeline call. A failed call (typically CUDA out-of-memory) is
        retried prompt by prompt, so only the video that still fails comes back as an Exception."""
        if len(prompts) != len(seeds):
            raise ValueError("prompts and seeds differ in length")
        out: list[GeneratedVideo | Exception] = []
        n = self._batch_size
        for chunk, chunk_seeds in ((prompts[i:i + n], seeds[i:i + n]) for i in range(0, len(prompts), n)):
            try:
                out.extend(self._render(chunk, chunk_seeds))
            except Exception as exc:  # noqa: BLE001 - attributed to single videos below
                self._recover(exc)
                if len(chunk) == 1:
                    out.append(exc)
                    continue
                log.warning("generator %r: batch of %d failed (%s); retrying one by one",
                            self.name, len(chunk), _first_line(exc, 120))
                for prompt, seed in zip(chunk, chunk_seeds):
                    try:
                        out.extend(self._render([prompt], [seed]))
                    except Exception as single_exc:  # noqa: BLE001 - this video only; the shard goes on
                        self._recover(single_exc)
                        out.append(single_exc)
        return out

    def _render(self, prompts: list[dict], seeds: list[int]) -> list[GeneratedVideo]:
        """One pipeline call for ``prompts``; raises on failure."""
        import torch

        n = len(prompts)
        kwargs = dict(self._call_kwargs)
        if self.negative_prompt is not None:
            kwargs["negative_prompt"] = [self.negative_prompt] * n  # pipelines want a list matching prompt
        generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        output = self.pipe(
            prompt=[p["text"] for p in prompts], generator=generators, output_type="np", **kwargs
        )
        videos = output.frames if hasattr(output, "frames") else output[0]
        want = (self._call_kwargs["num_frames"], self._call_kwargs["height"], self._call_kwargs["width"])
        got = tuple(to_uint8_frames(videos[0]).shape[:3])
        if got != want:  # the manifest records what ran, so a pipeline's own rounding must be known
            raise BrokenVideosError(f"generator {self.name!r}: {type(self.pipe).__name__} returned "
                                    f"{got[0]} frames of {got[2]}x{got[1]}, asked for {want[0]} of {want[2]}x{want[1]}")
        return [
            GeneratedVideo(
                frames=to_uint8_frames(videos[i]),
                fps=self.fps,
                label=prompt["label"],
                masks=None,  # masks come from the annotate step
                params={
                    **copy.deepcopy(self._static_params),
                    "prompt": prompt["text"],
                    "seed": int(seed),
                    "batch_len": n,  # batch shape affects float rounding; see the module docstring
                },
            )
            for i, (prompt, seed) in enumerate(zip(prompts, seeds))
        ]

    @staticmethod
    def _recover(exc: BaseException) -> None:
        """After an out-of-memory error, hand cached CUDA blocks back before the next attempt."""
        if not is_oom(exc):
            return
        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def config_from_params(params: dict, name: str = "regenerate") -> dict:
    """A generator entry that re-renders a manifest row's video (run it with ``generate(prompt, seed)``
    where prompt = {"text": params["prompt"], "label": …} and seed = params["seed"]).

    Pins the snapshot commit when one was recorded. Bit-identical output also needs the same device
    class and ``batch_len``; the entry uses ``batch_size = params["batch_len"]``.
    """
    entry = {
        "name": name,
        "backend": "diffusers",
        "model": params.get("model_path") or params["model"],
        "revision": params.get("commit") or params.get("revision"),
        "batch_size": int(params.get("batch_len") or 1),
        "scheduler": {k: copy.deepcopy(v) for k, v in (params.get("scheduler") or {}).items()
                      if k in ("class", "kwargs")} or None,  # the recorded config is provenance only
        **{k: copy.deepcopy(params.get(k)) for k in (
            "variant", "dtype", "device", "cpu_threads", "memory", "num_inference_steps", "guidance_scale",
            "negative_prompt", "height", "width", "num_frames", "fps", "pipeline_kwargs")},
    }
    return entry
