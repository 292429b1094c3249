"""A SAM2-based localizer: SAM2 fine-tuned to segment artifacts, prompted by learned embeddings.

The BrokenVideos paper fine-tunes SAM-family models (SAMWISE, GLUS, VideoLISA) on the artifact task;
this is that idea inside the package, built from SAM2's own modules with ``sam2.build_sam.build_sam2``
(a config of the sam2 package, e.g. ``configs/sam2.1/sam2.1_hiera_t.yaml``, and a release checkpoint
given by path, e.g. ``sam2.1_hiera_tiny.pt``).

What replaces the user's clicks: two learned prompt tokens, "artifact" and "normal", fed to SAM's
mask decoder as its sparse prompt embeddings on every frame, the way a positive and a negative click
would be (they start as SAM's positive- and negative-click embeddings). The dense prompt is SAM's
"no mask" embedding. No clicks, no boxes, no text.

A clip (B, T, 3, H, W) in [0, 1] is resized to ``image_size`` squared and ImageNet-normalised (as
SAM2's predictors do), and every frame goes through the image encoder (Hiera + FPN). Frames are then
decoded in order, with SAM2's own memory, reset for every clip:

* frame 0 is the conditioning frame: no memory, SAM2's ``no_mem_embed`` added to its features;
* frame t > 0 is conditioned by ``memory_attention`` (``_prepare_memory_conditioned_features``) on
  the memories of frame 0 and of the up to ``num_maskmem - 1`` (6) frames before it, plus the object
  pointers of frame 0 and of up to 15 previous frames: exactly SAM2's tracking-time memory bank;
* after decoding, ``_encode_new_memory`` turns the frame's features and predicted mask into its
  memory (``memory_encoder``), and the decoder's mask token into its object pointer.

Output per frame: the decoder's single-mask logits (stride 4 of ``image_size``), gated by SAM2's
object score: ``min(mask, object score)``, so a pixel is an artifact only if the frame has one. The
gate trains the object-score head through the pixel loss (normal frames push it down), and memory
uses the same gated mask. Logits are upsampled bilinearly back to (H, W).

``encoder``: ``frozen`` (default; the encoder runs under ``no_grad`` in eval mode), ``lora``
(low-rank adapters on every Hiera block's attention ``qkv`` and ``proj`` linears; base weights frozen)
or ``full``. The rest of SAM2 (memory attention, memory encoder, mask decoder, pointer heads) and the
prompt tokens always train. Parts this forward never uses (the click/box/mask prompt encoders, the
IoU head, SAM2's mask-to-pointer downsampler) are frozen: they would get no gradient, and DDP refuses
parameters that get none. Memory needs T ≥ 2 for the same reason (train with ``clip_len >= 2``).

``checkpoint: null`` builds an untrained SAM2 and is refused unless ``allow_random_init: true``
(tests, CPU smoke runs). A saved model holds every weight, so loading it needs no checkpoint.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.models import CONFIG_NAME
from brokenvideos.models.backbones import IMAGENET_MEAN, IMAGENET_STD
from brokenvideos.models.base import Localizer

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
CHECKPOINTS_URL = "https://github.com/facebookresearch/sam2#download-checkpoints"
CHECKPOINT_KEY = "train.localizers[].model.checkpoint"
ENCODER_MODES = ("frozen", "lora", "full")
# Trained by SAM2 for clicks, boxes, mask inputs and IoU estimates, none of which this model uses.
UNUSED = ("sam_prompt_encoder.point_embeddings", "sam_prompt_encoder.not_a_point_embed",
          "sam_prompt_encoder.mask_downscaling", "sam_mask_decoder.iou_prediction_head", "mask_downsample",
          "no_mem_pos_enc")


def _where_to_get(config: str) -> str:
    try:
        from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES

        name = dict(HF_MODEL_ID_TO_FILENAMES.values()).get(config, f"the SAM2.1 checkpoint for {config}")
    except ImportError:
        name = f"the SAM2.1 checkpoint for {config}"
    return f"download {name} (facebookresearch SAM2.1 release, {CHECKPOINTS_URL}) and set {CHECKPOINT_KEY} to its path"


def build_sam2_model(config: str, checkpoint: str | None, allow_random_init: bool, image_size: int,
                     warn_random: bool = True):
    """SAM2Base from sam2's factory on CPU, never silently untrained."""
    if checkpoint is None:
        if not allow_random_init:
            raise BrokenVideosError(f"sam2_artifact: model.checkpoint is null: {_where_to_get(config)} "
                                    "(an untrained SAM2 needs allow_random_init: true, for tests only)")
        if warn_random:
            log.warning("sam2_artifact: checkpoint null and allow_random_init: an UNTRAINED SAM2")
    elif not Path(checkpoint).is_file():
        raise InputError(checkpoint, f"SAM2 checkpoint not found; {_where_to_get(config)}")
    try:
        from hydra.errors import MissingConfigException
        from sam2.build_sam import build_sam2
    except ImportError as exc:
        raise BrokenVideosError(f"sam2_artifact needs the sam2 package ({exc}): "
                                "pip install 'brokenvideos[sam2]'") from None
    try:
        # apply_postprocessing=False: no stability-based switch between mask tokens at eval time,
        # so training and prediction decode the same way.
        sam = build_sam2(config, checkpoint, device="cpu", apply_postprocessing=False,
                         hydra_overrides_extra=[f"++model.image_size={image_size}"])
    except MissingConfigException:
        raise BrokenVideosError(f"sam2_artifact: model.config {config!r} is not a config of the sam2 package "
                                f"(e.g. {DEFAULT_CONFIG})") from None
    except Exception as exc:  # the untrained model builds, so with a checkpoint the file is at fault
        if checkpoint is None:
            raise
        detail = " ".join(str(exc).split())[:200] or "its weights do not match the config"
        raise InputError(checkpoint, f"not a SAM2 checkpoint for {config} ({exc.__class__.__name__}: {detail})") from None
    if not (sam.pred_obj_scores and sam.use_obj_ptrs_in_encoder):
        raise BrokenVideosError(f"sam2_artifact: {config} has no object scores or pointers (SAM2.1 configs do)")
    return sam


class LoRALinear(nn.Module):
    """``base(x) + up(down(x))``: a frozen linear plus a trainable rank-r update that starts at zero,
    so a LoRA model begins exactly as the checkpoint."""

    def __init__(self, base: nn.Linear, rank: int):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.down = nn.Linear(base.in_features, rank, bias=False)  # nn.Linear's own random init
        self.up = nn.Linear(rank, base.out_features, bias=False)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.up(self.down(x))


class Sam2Artifact(Localizer):
    _loading_saved = False  # set while from_pretrained builds the skeleton its model.pt fills

    def __init__(self, config: str = DEFAULT_CONFIG, checkpoint: str | None = None, allow_random_init: bool = False,
                 image_size: int = 1024, encoder: str = "frozen", lora_rank: int = 8):
        super().__init__()
        if encoder not in ENCODER_MODES:
            raise BrokenVideosError(f"sam2_artifact: encoder {encoder!r} is not one of {', '.join(ENCODER_MODES)}")
        if image_size < 64 or image_size % 32:
            raise BrokenVideosError(f"sam2_artifact: image_size {image_size} must be a multiple of 32, >= 64")
        self.config = {"arch": "sam2_artifact", "config": config, "checkpoint": checkpoint,
                       "allow_random_init": allow_random_init, "image_size": image_size, "encoder": encoder,
                       "lora_rank": lora_rank}
        self.encoder, self.image_size = encoder, image_size
        self.sam = build_sam2_model(config, checkpoint, allow_random_init, image_size,
                                    warn_random=not Sam2Artifact._loading_saved)
        clicks = self.sam.sam_prompt_encoder.point_embeddings  # [negative, positive, box corners]
        self.prompts = nn.Parameter(torch.cat([clicks[1].weight, clicks[0].weight]).detach().clone())  # artifact, normal
        for name, p in self.sam.named_parameters():
            if name.startswith(UNUSED):
                p.requires_grad_(False)
        if encoder != "full":
            self.sam.image_encoder.requires_grad_(False)
        if encoder == "lora":
            for block in self.sam.image_encoder.trunk.blocks:
                block.attn.qkv = LoRALinear(block.attn.qkv, lora_rank)
                block.attn.proj = LoRALinear(block.attn.proj, lora_rank)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.encoder == "frozen":
            self.sam.image_encoder.eval()
        return self

    def _encode(self, frames: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(N, 3, S, S) normalised frames → SAM2's FPN maps (strides 4, 8, 16) and their position encodings."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.encoder != "frozen"):
            out = self.sam.image_encoder(frames)
        fpn = list(out["backbone_fpn"])
        # The high-resolution levels go through the decoder's own projections (SAM2's forward_image
        # does this too); they are decoder weights, so they train even with a frozen encoder.
        fpn[0] = self.sam.sam_mask_decoder.conv_s0(fpn[0])
        fpn[1] = self.sam.sam_mask_decoder.conv_s1(fpn[1])
        return fpn, list(out["vision_pos_enc"])

    def _decode(self, pix_feat: torch.Tensor, high_res: list[torch.Tensor]):
        """SAM's mask decoder with the learned prompts: gated low-res logits (B, 1, S/4, S/4), the
        object score (B, 1) and the object pointer (B, C)."""
        sam, b = self.sam, pix_feat.shape[0]
        prompt_encoder = sam.sam_prompt_encoder
        dense = prompt_encoder.no_mask_embed.weight.view(1, -1, 1, 1).expand(b, -1, *pix_feat.shape[-2:])
        masks, _, tokens, score = sam.sam_mask_decoder(
            image_embeddings=pix_feat, image_pe=prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=self.prompts.expand(b, -1, -1), dense_prompt_embeddings=dense,
            multimask_output=False, repeat_image=False, high_res_features=high_res)
        masks, score = masks.float(), score.float()
        low_res = torch.minimum(masks, score[:, :, None, None])
        # SAM2's pointer: from the mask token, replaced by the learned "no object" pointer when absent
        present = (score > 0).float()
        pointer = present * sam.obj_ptr_proj(tokens[:, 0]) + (1 - present) * sam.no_obj_ptr
        return low_res, score, pointer

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """clip: (B, T, 3, H, W) in [0, 1] → logits (B, T, H, W)."""
        b, t, _, h, w = clip.shape
        s = self.image_size
        x = F.interpolate(clip.flatten(0, 1), size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        fpn, pos = self._encode((x - self.mean) / self.std)
        per_frame = lambda maps, i: [m.unflatten(0, (b, t))[:, i].contiguous() for m in maps]  # noqa: E731
        memory = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}  # SAM2's output_dict, this clip only
        logits = []
        for i in range(t):
            maps = per_frame(fpn, i)
            _, feats, feat_pos, sizes = self.sam._prepare_backbone_features(
                {"backbone_fpn": maps, "vision_pos_enc": per_frame(pos, i)})
            pix_feat = self.sam._prepare_memory_conditioned_features(
                frame_idx=i, is_init_cond_frame=i == 0, current_vision_feats=feats[-1:],
                current_vision_pos_embeds=feat_pos[-1:], feat_sizes=sizes[-1:], output_dict=memory, num_frames=t)
            low_res, score, pointer = self._decode(pix_feat, maps[:2])
            logits.append(F.interpolate(low_res, size=(h, w), mode="bilinear", align_corners=False)[:, 0])
            if i < t - 1:  # the last frame's memory would have no reader
                mem, mem_pos = self.sam._encode_new_memory(
                    current_vision_feats=feats, feat_sizes=sizes, object_score_logits=score, is_mask_from_pts=False,
                    pred_masks_high_res=F.interpolate(low_res, size=(s, s), mode="bilinear", align_corners=False))
                kind = "cond_frame_outputs" if i == 0 else "non_cond_frame_outputs"
                memory[kind][i] = {"maskmem_features": mem, "maskmem_pos_enc": mem_pos, "obj_ptr": pointer}
        return torch.stack(logits, dim=1)

    @classmethod
    def loading_kwargs(cls, config: dict) -> dict:
        return {**config, "checkpoint": None, "allow_random_init": True}  # every weight is in model.pt

    @classmethod
    def from_pretrained(cls, directory, map_location="cpu") -> "Sam2Artifact":
        Sam2Artifact._loading_saved = True
        try:
            model = super().from_pretrained(directory, map_location)
        finally:
            Sam2Artifact._loading_saved = False
        saved = json.loads((Path(directory) / CONFIG_NAME).read_text())
        for key in ("checkpoint", "allow_random_init"):  # still says where the weights came from
            model.config[key] = saved.get(key, model.config[key])
        return model
