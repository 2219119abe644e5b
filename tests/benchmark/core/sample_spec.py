"""One small run spec shared by the record and store tests."""

from benchmark.core.hparams import Params
from benchmark.core.records import RunSpec

SPEC = RunSpec(
    method="baseline",
    hparams=Params({"lr": 1e-3}),
    dataset="synthetic",
    dataset_options=Params({"seed": 0}),
    seed=0,
    steps=10,
    val_checks=2,
    eval_overlap=0.5,
    eval_batch_size=16,
    train_modalities=("dsm", "optical"),
    label="baseline",
    preset="quick",
)
