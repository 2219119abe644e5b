"""What a method costs: parameters, FLOPs of a real training step and of inference.

FLOPs are counted by PyTorch's own `torch.utils.flop_counter.FlopCounterMode` on real calls:
the method's `update` on a real training batch (forward, backward and everything the method
does in a step; the optimiser's element-wise updates are not counted) and its `predict` on one
evaluation window. A step is counted on a deep copy of the method, with every random generator
restored afterwards, so counting never changes the run it describes. Multi-stage methods do
different work at different steps (imputation after a warm-up), so a stage's cost is the mean
over `FLOP_PROBES` steps spread evenly over it. A method whose `update_calls` exceed its budget
(a teacher trained for the full budget before its student) has two stages, each probed and
counted; the per-step figure divides everything by the budget's steps, so the teacher's work is
part of the run's cost and of what `--budget flops` matches.
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


@dataclass(frozen=True)
class TrainingFlops:
    """Training FLOPs of a run, per stage (`Method.update_calls`): the prelude's calls (a
    teacher's; none for most methods) and the deployed model's `steps`."""

    prelude: float
    deployed: float
    steps: int

    @property
    def per_step(self) -> float:
        """Everything the run trains, per step of its budget (what `--budget flops` matches)."""
        return (self.prelude + self.deployed) / max(1, self.steps)


def stage_flops(
    method: Method, batches: BatchSource, calls: list[tuple[int, int]], device: torch.device
) -> float:
    """Mean FLOPs of `update` over (call, batch) pairs, each counted on a copy of the method."""
    counts = []
    for call, index in calls:
        batch = {k: v.to(device) for k, v in batches.batch(index).items()}
        with preserved_random_state(), warnings.catch_warnings():
            # a deep-copied optimiser loses the scheduler's step marker; the copy is a probe
            warnings.filterwarnings("ignore", message=".*optimizer.step\\(\\)` has been overridden")
            probe = copy.deepcopy(method)
            counts.append(
                count_flops(lambda p=probe, b=batch, s=call: p.update(b, s))  # noqa: B023
            )
            del probe
    return float(np.mean(counts)) if counts else 0.0


def training_flops(
    method: Method, batches: BatchSource, total_steps: int, device: torch.device
) -> TrainingFlops:
    """Total training FLOPs of each stage: the mean over `probe_steps` of the stage's calls
    (prelude call c on batch c, deployed step s as call prelude + s on batch s), times its
    number of calls."""
    prelude = type(method).update_calls(total_steps) - total_steps
    early = [(c, c) for c in probe_steps(prelude)] if prelude > 0 else []
    late = [(prelude + s, s) for s in probe_steps(total_steps)]
    return TrainingFlops(
        prelude * stage_flops(method, batches, early, device),
        total_steps * stage_flops(method, batches, late, device),
        total_steps,
    )


def training_flops_per_step(
    method: Method, batches: BatchSource, total_steps: int, device: torch.device
) -> float:
    """Training FLOPs per step of the budget, a prelude's (teacher's) calls included."""
    return training_flops(method, batches, total_steps, device).per_step


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
    """Everything the run trains per step of its budget (a teacher's calls included)."""
    inference: dict[str, InferenceCost]
    """Scenario (canonical string) -> its inference cost."""
    prelude_gflops: float = 0.0
    """Total training GFLOPs of the prelude stage (`Method.update_calls`; 0 without one)."""
    deployed_gflops: float = 0.0
    """Total training GFLOPs of the deployed model's steps."""


def measure_run_cost(
    method: Method,
    batches: BatchSource,
    total_steps: int,
    scenarios: list[Scenario],
    device: torch.device,
) -> RunCost:
    """Everything `RunCost` holds, measured on the run's own method and batches."""
    train = training_flops(method, batches, total_steps, device)
    window = {k: v[:1].to(device) for k, v in batches.batch(0).items()}
    with preserved_random_state():
        inference = {str(s): inference_cost(method, window, s) for s in scenarios}
    return RunCost(
        trained_parameters(method),
        train.per_step / GIGA,
        inference,
        train.prelude / GIGA,
        train.deployed / GIGA,
    )
