"""What a method costs: parameters, FLOPs of a real training step and of inference.

FLOPs are counted by PyTorch's own `torch.utils.flop_counter.FlopCounterMode` on real calls:
the method's `update` on a real training batch (forward, backward and everything the method
does in a step; the optimiser's element-wise updates are not counted) and its `predict` on one
evaluation window. A step is counted on a deep copy of the method, with every random generator
restored afterwards, so counting never changes the run it describes. Multi-stage methods do
different work at different steps (a teacher then a student; imputation after a warm-up), so
the training cost is the mean over `FLOP_PROBES` steps spread evenly over the run.
"""

from __future__ import annotations

import contextlib
import copy
import random
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from benchmark.core.method import Method, evaluation_mode, modality_inputs
from benchmark.core.scenarios import Scenario
from benchmark.data.pipeline import BatchSource

FLOP_PROBES = 5
"""Training steps counted per run: the first, the last and three in between."""
GIGA = 1e9


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Put Python's, NumPy's and torch's generators back as they were after the block."""
    python, numpy_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def count_flops(call: Callable[[], object]) -> float:
    """Floating-point operations of one call, as PyTorch's FLOP counter counts them."""
    with FlopCounterMode(display=False) as counter:
        call()
    return float(counter.get_total_flops())


def probe_steps(total: int, probes: int = FLOP_PROBES) -> list[int]:
    """`probes` steps spread evenly over [0, total), first and last included."""
    if total <= 1:
        return [0]
    picks = np.linspace(0, total - 1, num=min(probes, total))
    return sorted({int(round(p)) for p in picks})


def training_flops_per_step(
    method: Method, batches: BatchSource, total_steps: int, device: torch.device
) -> float:
    """Mean FLOPs of the method's training step over `probe_steps` (on copies)."""
    counts = []
    for step in probe_steps(total_steps):
        batch = {k: v.to(device) for k, v in batches.batch(step).items()}
        with preserved_random_state(), warnings.catch_warnings():
            # a deep-copied optimiser loses the scheduler's step marker; the copy is a probe
            warnings.filterwarnings("ignore", message=".*optimizer.step\\(\\)` has been overridden")
            probe = copy.deepcopy(method)
            counts.append(
                count_flops(lambda p=probe, b=batch, s=step: p.update(b, s))  # noqa: B023
            )
            del probe
    return float(np.mean(counts))


@dataclass(frozen=True)
class InferenceCost:
    """One scenario's inference cost on one evaluation window."""

    gflops: float
    parameters: int
    """Parameters of the modules that ran while predicting (what a deployment must hold)."""


def inference_cost(
    method: Method, window: Mapping[str, Tensor], scenario: Scenario
) -> InferenceCost:
    """FLOPs and parameters used by `predict` on one window (a batch of 1) of `scenario`."""
    inputs = scenario.select(modality_inputs(window))
    ran: set[nn.Module] = set()
    hooks = [m.register_forward_hook(lambda mod, *_: ran.add(mod)) for m in method.modules()]
    try:
        with evaluation_mode(method):
            flops = count_flops(lambda: method.predict(inputs))
    finally:
        for hook in hooks:
            hook.remove()
    used = {id(p): p for module in ran for p in module.parameters(recurse=False)}
    return InferenceCost(flops / GIGA, sum(p.numel() for p in used.values()))


def trained_parameters(method: Method) -> int:
    """Parameters some optimiser of the method updates (each counted once)."""
    params = {
        id(p): p
        for optimizer in method.optimizers()
        for group in optimizer.param_groups
        for p in group["params"]
    }
    return sum(p.numel() for p in params.values())


@dataclass(frozen=True)
class RunCost:
    """A run's costs that do not depend on time: parameters and FLOPs, per scenario."""

    params_trained: int
    train_gflops_per_step: float
    inference: dict[str, InferenceCost]
    """Scenario (canonical string) -> its inference cost."""


def measure_run_cost(
    method: Method,
    batches: BatchSource,
    total_steps: int,
    scenarios: list[Scenario],
    device: torch.device,
) -> RunCost:
    """Everything `RunCost` holds, measured on the run's own method and batches."""
    train = training_flops_per_step(method, batches, total_steps, device) / GIGA
    window = {k: v[:1].to(device) for k, v in batches.batch(0).items()}
    with preserved_random_state():
        inference = {str(s): inference_cost(method, window, s) for s in scenarios}
    return RunCost(trained_parameters(method), train, inference)
