import pytest
import torch

from benchmark.run.inference import sliding_window_logits, sliding_window_views, window_starts


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


def test_views_share_window_tensors_and_equal_each_view_alone():
    """Views built from the same tile tensors get the same window tensor objects (what
    `encode_once` keys on), and each view's logits are those of the view alone."""
    a, b, c = torch.randn(2, 200, 150), torch.randn(1, 200, 150), torch.randn(2, 200, 150)
    views = [{"a": a, "b": b}, {"a": a}, {"a": c, "b": b}]
    seen = []

    def predict_views(batch):
        seen.append(batch)
        return [torch.cat([v["a"], v.get("b", v["a"][:, :1])], dim=1) for v in batch]

    out = sliding_window_views(predict_views, views, 3, window=128, overlap=0.5, batch_size=3)
    for batch in seen:
        assert batch[0]["a"] is batch[1]["a"] and batch[0]["b"] is batch[2]["b"]
        assert batch[2]["a"] is not batch[0]["a"]
    for view, logits in zip(views, out, strict=True):

        def alone(inputs, view=view):
            return torch.cat([inputs["a"], inputs.get("b", inputs["a"][:, :1])], dim=1)

        expected = sliding_window_logits(alone, view, 3, window=128, overlap=0.5, batch_size=3)
        torch.testing.assert_close(logits, expected, rtol=0, atol=0)
