"""Optional TensorBoard logging of a run (`--log tensorboard`, the `tensorboard` extra)."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark.system.confine import write_target
from benchmark.system.errors import BenchmarkError

FOLDER = "tensorboard"


def check_tensorboard() -> None:
    """Refuse `--log tensorboard` before anything runs when the package is absent."""
    if importlib.util.find_spec("tensorboard") is None:
        raise BenchmarkError(
            "--log tensorboard needs the tensorboard package: pip install -e '.[tensorboard]'"
        )


class ScalarLog:
    """Scalars for TensorBoard under `<run_dir>/tensorboard/`, or nothing when disabled."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.folder = Path(run_dir) / FOLDER
        self.enabled = enabled
        self._writer: Any = None

    def __enter__(self) -> ScalarLog:
        if self.enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(write_target(self.folder)))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def scalars(self, group: str, values: Mapping[str, float], step: int) -> None:
        """Log `values` as `<group>/<name>` at `step`."""
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(f"{group}/{name}", float(value), step)
