"""The harness's hot paths, timed: PSA sampling, metric accumulation, sliding-window
inference, batch loading and one training step (quick preset, CPU)."""

from __future__ import annotations

import itertools

import pytest
import torch

from benchmark.run.inference import sliding_window_logits
from benchmark.run.metrics import ConfusionMatrix
from benchmark.run.train import train_step
from methods.components.psa.profiler import (
    HEADLINE_POINT,
    SAMPLERS,
    PsaPoint,
    prediction_logits,
    sampler_call,
    synthetic_labels,
)

CPU = torch.device("cpu")
POINT = PsaPoint(pixels_per_class=128, **HEADLINE_POINT)


@pytest.fixture(scope="module")
def labels() -> torch.Tensor:
    return synthetic_labels(POINT, 255, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_psa_sampling(benchmark, labels, sampler):
    logits = prediction_logits(POINT, CPU)
    benchmark(sampler_call(sampler, POINT, labels, logits, 255))


def test_confusion_matrix_update(benchmark):
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 6, (8, 512, 512), generator=g)
    prediction = torch.randint(0, 6, (8, 512, 512), generator=g)
    matrix = ConfusionMatrix(6, ignore_index=255)
    benchmark(matrix.update, prediction, target)


def test_sliding_window_inference(benchmark, quick_run):
    run = quick_run("baseline")
    run.method.eval()
    tile = run.data.test.load(0)
    inputs = {
        m: torch.from_numpy(run.sampler.sampler.normalize({m: tile[m]})[m])
        for m in run.spec.train_modalities
    }

    def infer():
        with torch.inference_mode():
            return sliding_window_logits(run.method.predict, inputs, 6, window=128, batch_size=16)

    benchmark(infer)


def test_batch_loading(benchmark, quick_run):
    run = quick_run("baseline")
    steps = itertools.count()
    benchmark(lambda: run.sampler.sampler.batch(next(steps)))


@pytest.mark.parametrize("method", ["baseline", "stars"])
def test_training_step(benchmark, quick_run, method):
    run = quick_run(method)
    steps = itertools.count()
    benchmark.pedantic(
        lambda: train_step(run.method, run.sampler, next(steps), CPU),
        rounds=5,
        warmup_rounds=2,
    )
