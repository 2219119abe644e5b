"""Requests from their textual forms: what `cli` and `api` both build before anything runs.

The command line and the Python API take the same textual forms (`"stars,baseline[lr=3e-4]"`,
`"0,1,2"`, `"dsm=0.3"`), so they share one parser per form and one builder per request, and
a bad value gives the same one-line `BenchmarkError` through either. The API also takes lists
(`seeds=[0, 1]`) and Python values the command line's parser would have typed (`steps=200`),
so the builders check every value's type too: a wrong one is the same one-line error, naming
the flag the argument stands for, never a `TypeError` from deep inside.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmark.commands.tuning import TuneRequest, make_tune_request, read_tuned
from benchmark.core.options import NamedConfig, parse_named_list, parse_pairs, split_top_level
from benchmark.core.plugins import DATASETS
from benchmark.core.presets import PRESETS
from benchmark.core.records import INVALID_FILLS, OWN_FILL
from benchmark.corrupt.corruption import parse_severities
from benchmark.corrupt.registry import CORRUPTIONS, parse_corruptions
from benchmark.corrupt.tile import TileCorruption, fill_matters
from benchmark.run.execution import Execution
from benchmark.run.selection import SELECTION_DESCRIPTION
from benchmark.run.sweep import SweepRequest
from benchmark.system.errors import BenchmarkError


def default_data_root() -> Path:
    """`$MISSBENCH_DATA`, or `./data`."""
    return Path(os.environ.get("MISSBENCH_DATA", "data"))


DEVICES = ("auto", "cpu", "cuda")
"""`--device` values (the command line's choices)."""
BUDGETS = ("steps", "flops")
"""`run --budget` values: the preset's steps, or steps scaled to the baseline's FLOPs."""
LOGS = ("none", "tensorboard")
"""`run --log` values."""


# ------------------------------------------------------------------------------ values
# What the command line's parser guarantees (a string, an int) the API's caller may not: each
# check refuses, in one line naming the flag, a value of a type the builders cannot read.
def text_value(flag: str, value: object) -> str:
    """A string option (`--missing`, `--preset`, ...), refused in one line when not a string."""
    if not isinstance(value, str):
        raise BenchmarkError(f"{flag} {value!r}: expected a string")
    return value


def choice(flag: str, value: object, choices: Collection[str]) -> str:
    """One of `choices` (what the command line's parser offers), refused in one line otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise BenchmarkError(f"{flag} {value!r}: expected one of {', '.join(choices)}")
    return value


def path_value(flag: str, value: object, required: bool = False) -> Path | None:
    """A path option (None: not given, unless `required`), from a string or a path-like."""
    if value is None and not required:
        return None
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise BenchmarkError(f"{flag} {value!r}: expected a path (a string or a pathlib.Path)")


def switch(name: str, value: object) -> bool:
    """An on/off option (`--retry-failed`, `qualitative`): True or False, nothing else."""
    if not isinstance(value, bool):
        raise BenchmarkError(f"{name} {value!r}: expected True or False")
    return value


def resolve_device(name: str) -> torch.device:
    """`auto` = CUDA when available; asking for CUDA without it is bad input."""
    choice("--device", name, DEVICES)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("--device cuda: no CUDA device is available (use cpu or auto)")
    return torch.device(name)


def execution_setting(name: str, value: Any) -> Any:
    """An `Execution` setting given by name, checked as its flag is (`resolve_execution`)."""
    flag = "--" + name.replace("_", "-")
    match name:
        case "out":
            return path_value(flag, value, required=True)
        case "launcher":
            return text_value(flag, value)
        case "address":
            return value if value is None else text_value(flag, value)
        case "workers" | "threads":
            positive(flag, value)
            return value
        case "retry_failed" | "tensorboard":
            return switch(flag, value)
    raise BenchmarkError(f"unknown execution setting {name!r}")


def resolve_execution(data_root: str | Path | None, device: str, **settings: Any) -> Execution:
    """Where and how runs execute, from the user's words: no data root means the default one,
    the device name is resolved; the other `Execution` fields are checked (type, counts >= 1)
    and taken as they are, but a launcher setting another launcher would ignore is refused
    (`--address` is Ray's, `--workers` the local launcher's)."""
    given = path_value("--data-root", data_root)
    root = given if given is not None else default_data_root()
    settings = {name: execution_setting(name, value) for name, value in settings.items()}
    execution = Execution(data_root=root, device=resolve_device(device), **settings)
    launcher = execution.launcher
    if execution.address is not None and launcher != "ray":
        raise BenchmarkError(
            f"--address {execution.address}: applies to nothing with --launcher {launcher} "
            "(it names a Ray cluster; add --launcher ray or leave --address out)"
        )
    if execution.workers != 1 and launcher != "local":
        raise BenchmarkError(
            f"--workers {execution.workers}: applies to nothing with --launcher {launcher} "
            "(it counts the local launcher's processes; leave it out)"
        )
    return execution


MAX_SEED = 2**32 - 1
"""NumPy's legacy seeding (and many libraries) take 32-bit seeds."""


def parse_seeds(text: str) -> tuple[int, ...]:
    """`0,1,2` -> (0, 1, 2): non-negative integers, duplicates dropped."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise BenchmarkError(f"--seeds {text!r}: expected comma-separated integers") from None
    if not seeds or any(not 0 <= s <= MAX_SEED for s in seeds):
        raise BenchmarkError(f"--seeds {text!r}: expected integers from 0 to {MAX_SEED}")
    return tuple(dict.fromkeys(seeds))


def parse_factors(text: str) -> tuple[float, ...]:
    """`1,10` -> (1.0, 10.0): finite numbers >= 1, duplicates dropped."""
    try:
        factors = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise BenchmarkError(
            f"--imbalance {text!r}: expected comma-separated numbers >= 1"
        ) from None
    if not factors or any(not f >= 1 or f == float("inf") for f in factors):
        raise BenchmarkError(f"--imbalance {text!r}: expected comma-separated numbers >= 1")
    return tuple(dict.fromkeys(factors))


def parse_train_missing(values: Sequence[str] | None) -> tuple[tuple[tuple[str, float], ...], ...]:
    """`["none", "dsm=0.3", "dsm=0.3,sar=0.5"]` -> ((), (("dsm", 0.3),), ...): the training-data
    settings to sweep; each maps modalities to the share of training tiles without them."""
    settings = []
    for text in values or ["none"]:
        if text.strip().lower() in ("none", "0", ""):
            settings.append(())
            continue
        expected = (
            "modality=share pairs with shares in [0, 1), e.g. dsm=0.3 or dsm=0.3,sar=0.5 (or none)"
        )
        pairs = {}
        for name, rate in parse_pairs(
            split_top_level(text), "--train-missing pair", text, expected
        ).items():
            try:
                value = float(rate)
            except ValueError:
                value = float("nan")
            if not 0.0 <= value < 1.0:
                raise BenchmarkError(f"--train-missing {text!r}: expected {expected}")
            if value > 0:
                pairs[name] = value
        settings.append(tuple(sorted(pairs.items())))
    return tuple(dict.fromkeys(settings))


def parse_invalid_fills(text: str) -> tuple[str, ...]:
    """`own`, `mean` or `own,mean` -> the fills of invalid pixels to evaluate, in that order."""
    fills = tuple(dict.fromkeys(f.strip() for f in text.split(",")))
    if not fills or any(f not in INVALID_FILLS for f in fills):
        raise BenchmarkError(
            f"--invalid-fill {text!r}: expected {', '.join(INVALID_FILLS)} or both, e.g. own,mean"
        )
    return fills


DEFAULT_SEVERITIES = "1-5"


def parse_corruption_grid(
    names: str, severities: str | None = None, fills: str | None = None
) -> tuple[TileCorruption, ...]:
    """`--corruptions clouds,haze|all` x `--severities 1-5` x `--invalid-fill own,mean` -> the
    `TileCorruption`s to run; a corruption that marks no pixel invalid once (the first fill:
    the fill changes nothing there).

    `severities` and `fills` are None where the user gave none (defaults: all five severities,
    `own`). Given where they apply to nothing, they are refused: severities without a
    corruption, a fill without a corruption that marks pixels invalid.
    """
    chosen = parse_invalid_fills(fills if fills is not None else OWN_FILL)
    corrupt = parse_corruptions(names) if names.strip().lower() not in ("", "none") else ()
    if severities is not None and not corrupt:
        raise BenchmarkError(
            f"--severities {severities}: applies to nothing without --corruptions (name the "
            "corruptions to evaluate, e.g. --corruptions clouds, or leave --severities out)"
        )
    if fills is not None and not any(fill_matters(n) for n in corrupt):
        marking = ", ".join(n for n in CORRUPTIONS.names() if fill_matters(n))
        raise BenchmarkError(
            f"--invalid-fill {fills}: applies to nothing without a --corruptions entry that "
            f"marks pixels invalid ({marking}; asked: {', '.join(corrupt) or 'none'}); leave "
            "--invalid-fill out"
        )
    if not corrupt:
        return ()
    levels = parse_severities(severities if severities is not None else DEFAULT_SEVERITIES)
    return tuple(
        TileCorruption(n, s, fill=f)
        for n in corrupt
        for s in levels
        for f in (chosen if fill_matters(n) else chosen[:1])
    )


def positive(name: str, value: int | None, allow_zero: bool = False) -> None:
    """Refuse a count flag below 1 (or below 0 with `allow_zero`), or not an integer at all."""
    if value is None:
        return
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral or value < (0 if allow_zero else 1):
        bound = ">= 0" if allow_zero else "a positive integer"
        raise BenchmarkError(f"{name} must be {bound}, got {value!r}")


# ------------------------------------------------------------------------------ parsers


NAMES = "a string like 'a,b[k=v]' or a sequence of such strings"
INTEGERS = "a string like '0,1,2' or a sequence of integers"
NUMBERS = "a string like '1,10' or a sequence of numbers"
SETTINGS = "a string like 'dsm=0.3' or a sequence of such strings"


def _is_number(value: object, kind: type = numbers.Real) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _text(value: str | Sequence, flag: str, item: str = NAMES) -> str:
    """A list argument in its textual form (`[0, 1]` -> `"0,1"`); a value that is neither a
    string nor a sequence of `item`s (strings, integers or numbers) is refused in one line."""
    if isinstance(value, str):
        return value
    accepts = {
        NAMES: lambda v: isinstance(v, str),
        SETTINGS: lambda v: isinstance(v, str),
        INTEGERS: lambda v: _is_number(v, numbers.Integral),
        NUMBERS: _is_number,
    }[item]
    listed = isinstance(value, Sequence) and not isinstance(value, bytes | bytearray)
    if listed and all(accepts(v) for v in value):
        return ",".join(str(v) for v in value)
    raise BenchmarkError(f"{flag} {value!r}: expected {item}")


def sweep_request(
    methods: str | Sequence[str],
    datasets: str | Sequence[str],
    seeds: str | Sequence[int],
    preset: str,
    steps: int | None,
    imbalance: str | Sequence[float],
    missing: str,
    budget: str,
    train_missing: str | Sequence[str] | None,
    selection: str,
    corruptions: str | Sequence[str],
    severities: str | Sequence[int] | None = None,
    invalid_fill: str | Sequence[str] | None = None,
    hparams_from: str | Path | None = None,
) -> SweepRequest:
    """The sweep a `run` asks for, each argument in its textual form or as a list;
    `hparams_from` (a tune folder or its best.json) gives each method its tuned values.
    `severities` and `invalid_fill` are None where not given (see `parse_corruption_grid`).
    Every value is checked here, types included, so that a request is refused before anything
    is written whichever entry (CLI or API) built it."""
    methods = _text(methods, "--methods")
    datasets = _text(datasets, "--dataset")
    seeds = _text(seeds, "--seeds", INTEGERS)
    text_value("--preset", preset)
    positive("--steps", steps)
    imbalance = _text(imbalance, "--imbalance", NUMBERS)
    text_value("--missing", missing)
    choice("--budget", budget, BUDGETS)
    if isinstance(train_missing, str):
        train_missing = [train_missing]
    elif train_missing is not None:  # one setting per item: never joined
        _text(train_missing, "--train-missing", SETTINGS)
    choice("--selection", selection, tuple(SELECTION_DESCRIPTION))
    corruptions = _text(corruptions, "--corruptions")
    severities = None if severities is None else _text(severities, "--severities", INTEGERS)
    invalid_fill = None if invalid_fill is None else _text(invalid_fill, "--invalid-fill")
    hparams_from = path_value("--hparams-from", hparams_from)
    tuned = read_tuned(hparams_from) if hparams_from is not None else None
    return SweepRequest(
        methods=tuple(parse_named_list(methods)),
        datasets=tuple(parse_named_list(datasets)),
        seeds=parse_seeds(seeds),
        preset=PRESETS.get(preset),
        steps=steps,
        imbalances=parse_factors(imbalance),
        missing=missing,
        budget=budget,
        train_missing=parse_train_missing(train_missing),
        selection=selection,
        corruptions=parse_corruption_grid(corruptions, severities, invalid_fill),
        every_corruption=corruptions.strip() == "all",
        tuned=tuned.methods if tuned is not None else None,
        tuned_from=tuned.source if tuned is not None else "",
    )


def tune_request(
    methods: str | Sequence[str],
    dataset: str,
    preset: str,
    trials: int,
    seed: int,
    rungs: str | Sequence[int] | None,
    keep: float | None,
    selection: str,
) -> TuneRequest:
    """The studies a `tune` asks for, each argument in its textual form or as a list: one
    dataset, one seed, the same trials and schedule for every method (`keep` None: not
    given)."""
    methods = _text(methods, "--methods")
    entries = parse_named_list(text_value("--dataset", dataset))
    if len(entries) != 1:
        raise BenchmarkError(f"--dataset {dataset!r}: tune searches on one dataset")
    given = entries[0]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise BenchmarkError(f"--seed {seed!r}: expected an integer from 0 to {MAX_SEED}")
    if rungs is not None:
        rungs = _text(rungs, "--rungs", INTEGERS)
    choice("--selection", selection, tuple(SELECTION_DESCRIPTION))
    return make_tune_request(
        methods=parse_named_list(methods),
        dataset=NamedConfig(DATASETS.canonical(given.name), given.overrides),
        preset=PRESETS.get(text_value("--preset", preset)),
        trials=trials,
        seed=seed,
        rungs=rungs,
        keep=keep,
        selection=selection,
    )
