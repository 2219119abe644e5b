"""Encoder weights, the common hyperparameter `weights`: none, imagenet, or a local file.

* `none`: random initialisation (the tests and the CPU presets);
* `imagenet`: timm's pretrained weights for the backbone, from the Hugging Face hub or, offline,
  from its local cache;
* a path: a timm state dict of the same backbone, as `.safetensors` or as a `.pth`/`.pt` file
  read with `weights_only=True`; its first convolution is adapted to the modality's band count
  the way timm adapts pretrained stems (`timm.models.adapt_input_conv`).

Everything that can fail (no cache offline, a missing or foreign file) is checked before any
run starts (`check_weights`), with one line saying how to provide the weights.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import timm
from torch import Tensor, nn

from benchmark.system.errors import BenchmarkError
from benchmark.system.io import load_tensors

NONE, IMAGENET = "none", "imagenet"
FEATURE_LEVELS = (1, 2, 3, 4)
"""timm feature indices used everywhere: strides 4, 8, 16, 32."""


def create_backbone(backbone: str, in_chans: int, weights: str = NONE) -> nn.Module:
    """Build a timm `features_only` model (strides 4..32) for `in_chans` bands, with `weights`."""
    pretrained = weights == IMAGENET
    try:
        model = timm.create_model(
            backbone,
            features_only=True,
            pretrained=pretrained,
            in_chans=in_chans,
            out_indices=FEATURE_LEVELS,
        )
    except Exception as error:  # hub, cache and network errors all come here
        if not pretrained:
            raise
        raise BenchmarkError(
            f"weights=imagenet: timm could not load pretrained {backbone!r} weights "
            f"({type(error).__name__}); connect to the Hugging Face hub once (the weights are "
            "cached), or pass weights=<path to a timm state dict (.safetensors or .pth)>"
        ) from None
    if weights not in (NONE, IMAGENET):
        load_state_dict_file(model, Path(weights), in_chans)
    return model


def weights_file(weights: object) -> Path | None:
    """Return the file a `weights` value names, or None for none and imagenet.

    A missing file is the one-line error the run itself would give. The file's bytes are part
    of the run's id (`RunSpec.file_digests`).
    """
    if weights in (NONE, IMAGENET):
        return None
    path = Path(str(weights))
    if not path.is_file():
        raise _missing(path)
    return path


def _missing(path: Path) -> BenchmarkError:
    return BenchmarkError(
        f"weights={path}: no such file; expected a timm state dict (.safetensors or .pth), "
        "or weights=none|imagenet"
    )


@functools.cache
def _read(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise _missing(path)
    try:
        state = load_tensors(path)
    except Exception as error:
        raise BenchmarkError(
            f"weights={path}: not a readable state dict ({type(error).__name__}); expected "
            "a timm state dict saved as .safetensors or with torch.save"
        ) from None
    if isinstance(state, Mapping) and "state_dict" in state:  # a training checkpoint
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise BenchmarkError(f"weights={path}: expected a mapping of names to tensors")
    return dict(state)


def load_state_dict_file(model: nn.Module, path: Path, in_chans: int) -> None:
    """Load a timm state dict into `model`, its first conv adapted to `in_chans` bands.

    Every tensor of the encoder must be in the file (a classifier head there is ignored).
    """
    state = dict(_read(path))
    first = _first_conv_key(model)
    if first in state and state[first].shape[1] != in_chans:
        state[first] = timm.models.adapt_input_conv(in_chans, state[first])
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state)
    wrong = sorted(k for k in own if k in state and state[k].shape != own[k].shape)
    if missing or wrong:
        what = f"{len(missing)} missing" if missing else f"{len(wrong)} of another shape"
        example = (missing or wrong)[0]
        raise BenchmarkError(
            f"weights={path}: not a state dict of this backbone ({what} tensors, e.g. {example!r})"
        )
    model.load_state_dict({k: state[k] for k in own})


def _first_conv_key(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    name = cfg.get("first_conv")
    if name:
        return f"{name}.weight"
    return next(k for k, v in model.state_dict().items() if v.dim() == 4)


def check_weights(backbone: str, weights: str, in_chans: int = 3) -> None:
    """Fail now, with one line, if `weights` cannot be had for `backbone` (builds it once)."""
    if weights != NONE:
        create_backbone(backbone, in_chans, weights)
