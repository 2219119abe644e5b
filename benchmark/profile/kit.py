"""What a profiler of a method's own parts uses (STARS's `profile psa` is one).

Extensions reach this set as `benchmark.api.profiling`, so a method package profiles its parts
through the public surface alone and measures them exactly as `profile step` measures a step:

* `ProfileSettings`: the preset, device, repeats and warm-up the command line asked for; its
  `open(method)` builds a method with its data and batches as a run would (a `ProfiledRun`,
  whose `train_step` is the harness's own step) and `origin()` says where rows were measured;
* `measure` and `Measurement`: a call's median time over synchronised repeats after warm-up,
  and its peak memory;
* `ProfileOrigin` and `profile_frame`: a profiler's row dataclass holds an origin and a
  measurement as fields, and `profile_frame` expands them into the columns every profile shares;
* `ProfileReport`: writes `<stem>.csv`, `<stem>.md` and the figure, and returns the headline
  lines the CLI prints; `frame_markdown` renders a table for the Markdown;
* `profile_figure`, `method_colours` and `LINESTYLES`: figures in the report's style.
"""

from __future__ import annotations

from benchmark.profile.output import ProfileReport, frame_markdown, profile_figure
from benchmark.profile.records import ProfileOrigin, profile_frame
from benchmark.profile.setup import ProfiledRun, ProfileSettings
from benchmark.profile.timing import Measurement, measure
from benchmark.report.plots import LINESTYLES, method_colours

__all__ = [
    "LINESTYLES",
    "Measurement",
    "ProfileOrigin",
    "ProfileReport",
    "ProfileSettings",
    "ProfiledRun",
    "frame_markdown",
    "measure",
    "method_colours",
    "profile_figure",
    "profile_frame",
]
