"""What both profilers need: a method built exactly as the harness builds it, its data, its batches.

Profiling a copy of the training code would measure the copy; so the profilers resolve a run
spec with the sweep's own validator (`expand`), open the data with `prepare_data`, build the
method with `build_method` and draw batches through `train_step`, the harness's own step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.core.method import Method
from benchmark.core.options import NamedConfig, parse_named
from benchmark.core.presets import Preset
from benchmark.core.records import RunSpec
from benchmark.data.pipeline import PrefetchingSampler, RunData, prepare_data, training_batches
from benchmark.profile.records import ProfileOrigin
from benchmark.profile.timing import PhaseClock
from benchmark.run.sweep import SweepRequest, expand
from benchmark.run.train import build_method, train_step
from benchmark.system.provenance import git_commit


@dataclass(frozen=True)
class ProfileSettings:
    """Where and how carefully to profile: the same for `profile psa` and `profile step`."""

    preset: Preset
    device: torch.device
    data_root: Path
    dataset: str = "synthetic"
    repeats: int = 10
    """Timed calls per measurement (the median is reported)."""
    warmup: int = 3
    """Untimed calls first (allocator, kernel selection, caches)."""

    def origin(self) -> ProfileOrigin:
        """What every profile row records about where it was measured."""
        return ProfileOrigin(device_name(self.device), self.preset.name, git_commit())

    def open(self, method: str | NamedConfig) -> ProfiledRun:
        return open_profiled_run(method, self.dataset, self.preset, self.device, self.data_root)


@dataclass
class ProfiledRun:
    """A method ready to step, with the run spec and sampler the harness would give it."""

    spec: RunSpec
    data: RunData
    method: Method
    sampler: PrefetchingSampler

    def batch(self, step: int, device: torch.device) -> dict[str, torch.Tensor]:
        return {k: v.to(device) for k, v in self.sampler.sampler.batch(step).items()}

    def train_step(self, step: int, device: torch.device, clock: PhaseClock | None = None) -> None:
        """The harness's own training step on batch `step` (`clock`: where its time goes)."""
        train_step(self.method, self.sampler, step, device, clock=clock)

    def close(self) -> None:
        self.sampler.close()

    def __enter__(self) -> ProfiledRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_profiled_run(
    method: str | NamedConfig,
    dataset: str,
    preset: Preset,
    device: torch.device,
    data_root: Path,
    seed: int = 0,
) -> ProfiledRun:
    """Build `method` (e.g. "stars[psa=false]") on `dataset` at `preset`, as a real run would."""
    named = parse_named(method) if isinstance(method, str) else method
    request = SweepRequest((named,), (parse_named(dataset),), (seed,), preset, missing="none")
    spec = expand(request).specs[0]
    data = prepare_data(spec, data_root)
    built = build_method(spec, data, device)
    sampler = training_batches(
        data.train,
        spec.hparams,
        seed,
        spec.train_modalities,
        data.label_filter,
        device,
        steps=None,
    )
    return ProfiledRun(spec, data, built, sampler)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"
