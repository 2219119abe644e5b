import pytest
import torch

from benchmark.run.inference import sliding_window_logits, window_starts


def test_window_starts_cover_and_end_flush():
    assert window_starts(256, 128, 64) == [0, 64, 128]
    assert window_starts(300, 128, 64) == [0, 64, 128, 172]
    assert window_starts(100, 128, 64) == [0]


def pixelwise(inputs):
    """A 'model' whose logits depend only on each pixel, so windows must stitch exactly."""
    x = inputs["a"]
    return torch.cat([x, -x, x * 2], dim=1)


@pytest.mark.parametrize(
    "shape,window,overlap",
    [((1, 256, 256), 128, 0.5), ((1, 200, 300), 128, 0.25), ((1, 70, 90), 128, 0.5)],
)
def test_stitching_equals_full_prediction(shape, window, overlap):
    x = torch.randn(shape)
    logits = sliding_window_logits(
        pixelwise, {"a": x}, num_classes=3, window=window, overlap=overlap, batch_size=3
    )
    assert logits.shape == (3, *shape[1:])
    torch.testing.assert_close(logits, pixelwise({"a": x[None]})[0])


def test_overlapping_windows_are_averaged():
    calls = []

    def position_dependent(inputs):
        calls.append(inputs["a"].shape[0])
        return torch.ones(inputs["a"].shape[0], 1, *inputs["a"].shape[-2:]) * len(calls)

    logits = sliding_window_logits(
        position_dependent,
        {"a": torch.zeros(1, 192, 128)},
        num_classes=1,
        window=128,
        overlap=0.5,
        batch_size=1,
    )
    # windows start at rows 0 and 64: the middle band is the mean of calls 1 and 2
    assert logits[0, 0, 0] == 1 and logits[0, 100, 0] == 1.5 and logits[0, 191, 0] == 2
