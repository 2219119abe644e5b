"""Band-streamed sliding-window inference equals whole-tile inference, exactly."""

import pytest
import torch

from benchmark.run.inference import one_by_one, sliding_window_bands, sliding_window_logits


def window_model(inputs):
    """Logits that depend on the whole window (not per pixel): stitching must match exactly."""
    x = inputs["a"]
    mean = x.mean(dim=(-2, -1), keepdim=True)
    return torch.cat([x + mean, x * mean, -x], dim=1)


@pytest.mark.parametrize(
    "shape,window,overlap,batch",
    [((1, 256, 256), 128, 0.5, 3), ((1, 300, 200), 128, 0.25, 16), ((1, 128, 400), 128, 0.5, 2)],
)
def test_bands_equal_whole_tile(shape, window, overlap, batch):
    x = torch.randn(shape)
    whole = sliding_window_logits(
        window_model, {"a": x}, 3, window=window, overlap=overlap, batch_size=batch
    )
    rows_read = []

    def read_rows(r0, r1):
        rows_read.append(r1 - r0)
        return [{"a": x[:, r0:r1]}]

    predict = one_by_one(window_model)
    bands = list(sliding_window_bands(predict, read_rows, *shape[1:], 3, window, overlap, batch))
    assert bands[0][0] == 0 and bands[-1][1] == shape[1]
    assert all(a[1] == b[0] for a, b in zip(bands, bands[1:], strict=False))
    streamed = torch.cat([b[2][0] for b in bands], dim=1)
    torch.testing.assert_close(streamed, whole, rtol=0, atol=0)
    if batch <= 3:  # a few windows per batch: never more than two window heights read
        assert max(rows_read) <= 2 * window


def test_bands_of_several_views_equal_each_view_alone():
    x, y = torch.randn(1, 256, 192), torch.randn(1, 256, 192)

    def read_rows(r0, r1):
        a, b = x[:, r0:r1], y[:, r0:r1]
        return [{"a": a}, {"a": b}, {"a": a}]

    bands = list(
        sliding_window_bands(one_by_one(window_model), read_rows, 256, 192, 3, 128, 0.5, 2)
    )
    for view, tile in enumerate((x, y, x)):
        alone = sliding_window_logits(window_model, {"a": tile}, 3, window=128, batch_size=2)
        streamed = torch.cat([b[2][view] for b in bands], dim=1)
        torch.testing.assert_close(streamed, alone, rtol=0, atol=0)
