"""`run_benchmark.py export RUN --format onnx`: a finished run as ONNX models, for QGIS (the
Deepness plugin) and onnxruntime services.

**One model per missing-modality scenario**, not one model with an availability input: every
method's `predict` takes the present modalities as a mapping and many handle an absent one
with Python control flow (a branch or head chosen per scenario, a translator run only for
what is missing), which a traced graph cannot hold, so an availability input would either
freeze one scenario or need every method rewritten; and Deepness feeds a model exactly one
input tensor, whose band count says which bands you have. So `<out>/<scenario>.onnx` (e.g.
`dsm+optical.onnx`, `optical.onnx`) takes that scenario's bands stacked in the dataset's
modality order (`missbench_bands` in the metadata), each graph exactly `predict` for that
scenario.

Each graph takes standardised values [N, C, H, W] (dynamic N, H and W; non-finite values
become 0, the band's mean, as `predict`'s nodata fill), pads H and W up to a multiple of 32
(reflect, as the harness pads a scene smaller than its window) and returns softmax
probabilities [N, K, H, W]: Deepness thresholds and argmaxes probabilities. Averaging the
log-probabilities of overlapping windows gives the same argmax as averaging logits (they
differ by a constant per pixel), so sliding windows over these outputs reproduce `predict`.

The metadata uses Deepness's keys (JSON values): `model_type`, `class_names`, `tile_size`
(the run's window; Deepness 0.6 reads this spelling, its table documents `tiles_size`, so
both are written), `tiles_overlap` (percent), `standardization_mean`/`standardization_std`
(Deepness scales pixels by 1/255 before standardising, so these are the run's statistics
divided by 255: the net effect is the run's (x - mean) / std on raw values), `resolution`
(cm per pixel, written when `--resolution` gives it: a run does not know its ground
resolution), and `seg_thresh` and `seg_small_segment` of 0 (plain argmax, like `predict`).
Deepness reads no colours; `class_colors` carries the palette for other readers, and the
`missbench_*` keys the run, the scenario, the input bands and their raw statistics.

Opset 17 and IR version 8: Deepness requires onnxruntime 1.12.1 to 1.17, and onnxruntime runs
opset 17 / IR 8 from 1.12 on. The TorchScript exporter writes opset 17; torch's newer exporter
starts at opset 18 and needs onnxscript.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.core.scenarios import Scenario, all_scenarios
from benchmark.deploy.model import DeployedModel, load_model
from benchmark.system.errors import BenchmarkError, describe
from benchmark.system.io import atomic_write_bytes

log = logging.getLogger(__name__)

OPSET = 17
IR_VERSION = 8
SIZE_MULTIPLE = 32
"""H and W are padded up to a multiple of this, as `sliding_window_views` pads small scenes."""

TOLERANCE = 1e-4
"""Largest difference of probabilities between onnxruntime and PyTorch an export may show."""

EXTRA_HINT = 'pip install -e ".[export]"'


def require(module: str) -> ModuleType:
    """Import `onnx` or `onnxruntime` (the optional `export` extra), or one line saying how."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BenchmarkError(
            f"export --format onnx needs the `{module}` package of the `export` extra: {EXTRA_HINT}"
        ) from None


def default_out(run_dir: Path) -> Path:
    """Where `export` writes without `--out`: `exports/<run_id>` in the working folder."""
    return Path("exports") / Path(run_dir).name


def scenario_bands(model: DeployedModel, scenario: Scenario) -> list[tuple[str, int]]:
    """(modality, band count) of the scenario's inputs, in the dataset's modality order."""
    return [(m.name, m.channels) for m in model.spec.modalities if m.name in scenario.present]


class ScenarioGraph(nn.Module):
    """One scenario's `predict` on one stacked input: standardised bands [N, C, H, W] in,
    probabilities [N, K, H, W] out."""

    def __init__(self, method: nn.Module, bands: list[tuple[str, int]]) -> None:
        super().__init__()
        self.method = method
        self.names = [name for name, _ in bands]
        self.sizes = [size for _, size in bands]

    def forward(self, x: Tensor) -> Tensor:
        x = torch.where(torch.isfinite(x), x, torch.zeros_like(x))
        height, width = x.shape[-2], x.shape[-1]
        pad_h = (SIZE_MULTIPLE - height % SIZE_MULTIPLE) % SIZE_MULTIPLE
        pad_w = (SIZE_MULTIPLE - width % SIZE_MULTIPLE) % SIZE_MULTIPLE
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        inputs = dict(zip(self.names, torch.split(x, self.sizes, dim=1), strict=True))
        logits = self.method.predict(inputs).float()
        return torch.softmax(logits[..., :height, :width], dim=1)


def metadata(model: DeployedModel, scenario: Scenario, resolution: float | None) -> dict[str, Any]:
    """The model's metadata: Deepness's keys, then MissBench's own (values JSON-encoded later)."""
    spec, card = model.spec, model.card
    stats = [
        (f"{m.name}:{band + 1}", m.mean[band], m.std[band])
        for m in spec.modalities
        if m.name in scenario.present
        for band in range(m.channels)
    ]
    meta: dict[str, Any] = {
        "model_type": "Segmentor",
        "class_names": dict(enumerate(spec.classes)),
        "tile_size": card["window"],
        "tiles_size": card["window"],
        "tiles_overlap": round(100 * card["overlap"]),
        "standardization_mean": [mean / 255 for _, mean, _ in stats],
        "standardization_std": [std / 255 for _, _, std in stats],
        "seg_thresh": 0.0,
        "seg_small_segment": 0,
    }
    if resolution is not None:
        meta["resolution"] = resolution
    meta |= {
        "class_colors": {
            i: "#{:02x}{:02x}{:02x}".format(*rgb) for i, rgb in enumerate(spec.palette)
        },
        "missbench_run_id": card["run_id"],
        "missbench_method": card["label"],
        "missbench_dataset": spec.name,
        "missbench_scenario": str(scenario),
        "missbench_bands": [name for name, _, _ in stats],
        "missbench_mean": [mean for _, mean, _ in stats],
        "missbench_std": [std for _, _, std in stats],
        "missbench_input": "(raw - missbench_mean) / missbench_std per band, NaN = nodata",
        "missbench_output": "softmax probabilities [N, K, H, W]",
    }
    return meta


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    folder: Path
    files: tuple[Path, ...]
    scenarios: tuple[str, ...]
    max_difference: float
    """The largest |onnxruntime - PyTorch| probability of the check on a size other than the
    traced one."""


def export_onnx(
    run_dir: Path,
    out: Path | None = None,
    resolution: float | None = None,
    force: bool = False,
) -> ExportSummary:
    """Write one ONNX model per scenario of the run in `run_dir` into `out`, each checked
    against PyTorch with onnxruntime."""
    onnx, ort = require("onnx"), require("onnxruntime")
    if resolution is not None and not (np.isfinite(resolution) and resolution > 0):
        raise BenchmarkError(f"--resolution {resolution}: expected centimetres per pixel > 0")
    out = default_out(run_dir) if out is None else Path(out)
    if out.exists() and not out.is_dir():
        raise BenchmarkError(f"--out {out}: exists and is not a folder")
    model = load_model(run_dir, "cpu")
    scenarios = all_scenarios(model.modalities)
    targets = [out / f"{scenario}.onnx" for scenario in scenarios]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise BenchmarkError(f"{existing[0]}: exists; choose another --out or pass --force")
    worst = 0.0
    for scenario, target in zip(scenarios, targets, strict=True):
        proto = trace(onnx, model, scenario)
        for key, value in metadata(model, scenario, resolution).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        proto.doc_string = (
            f"MissBench run {model.card['run_id']} ({model.card['label']}), {scenario}"
        )
        onnx.checker.check_model(proto)
        data = proto.SerializeToString()
        worst = max(worst, check_against_torch(ort, data, model, scenario))
        atomic_write_bytes(target, data)
        bands = "+".join(name for name, _ in scenario_bands(model, scenario))
        log.info("export: %s (input bands of %s, %.1f MB)", target, bands, len(data) / 1e6)
    return ExportSummary(out, tuple(targets), tuple(map(str, scenarios)), worst)


def trace(onnx: ModuleType, model: DeployedModel, scenario: Scenario) -> Any:
    """The scenario's graph as an ONNX ModelProto (opset 17, IR version 8), dynamic N, H, W."""
    bands = scenario_bands(model, scenario)
    graph = ScenarioGraph(model.method, bands).eval()
    window = model.card["window"]
    example = torch.zeros(1, sum(size for _, size in bands), window, window)
    axes = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter is deprecated in favour of one that needs opset 18
            # (module docstring); its tracer warnings name shapes made dynamic below.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                (example,),
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=["input"],
                output_names=["probabilities"],
                dynamic_axes={"input": axes, "probabilities": axes},
            )
    except Exception as error:
        raise BenchmarkError(
            f"export: {model.card['label']} cannot be traced to ONNX for scenario {scenario} "
            f"({describe(error)})"
        ) from error
    proto = onnx.load_from_string(buffer.getvalue())
    proto.ir_version = IR_VERSION
    # The tracer leaves the class axis symbolic after the crop; Deepness reads the class count
    # from it.
    classes = proto.graph.output[0].type.tensor_type.shape.dim[1]
    classes.Clear()
    classes.dim_value = model.spec.num_classes
    return proto


def check_against_torch(
    ort: ModuleType, data: bytes, model: DeployedModel, scenario: Scenario
) -> float:
    """The largest probability difference between onnxruntime and PyTorch on a random input of
    a size the graph was not traced at (not a multiple of 32: the padding runs too); refuses an
    export whose probabilities differ by more than `TOLERANCE`."""
    bands = scenario_bands(model, scenario)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, sum(size for _, size in bands), 72, 104, generator=generator)
    with torch.no_grad():
        expected = ScenarioGraph(model.method, bands).eval()(x).numpy()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    difference = float(np.abs(got - expected).max()) if got.shape == expected.shape else np.inf
    if not difference <= TOLERANCE:
        raise BenchmarkError(
            f"export: onnxruntime and PyTorch disagree on {model.card['label']}, scenario "
            f"{scenario} (max |difference| {difference:.3g} > {TOLERANCE}, shapes {got.shape} "
            f"and {expected.shape}); this method does not export faithfully"
        )
    return difference
