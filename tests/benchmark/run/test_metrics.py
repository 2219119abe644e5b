import math

import numpy as np
import pytest
import torch

from benchmark.run.metrics import ConfusionMatrix, scores_from_confusion


def test_hand_computed_confusion_with_ignore():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 2]])
    cm = ConfusionMatrix(3, ignore_index=255)
    cm.update(pred, target)
    expected = np.array([[1, 1, 0], [0, 2, 1], [1, 0, 1]])
    np.testing.assert_array_equal(cm.matrix.numpy(), expected)
    s = cm.compute()
    # class 0: tp 1, fn 1, fp 1 -> IoU 1/3; class 1: tp 2, fn 1, fp 1 -> 2/4; class 2: 1/3
    assert s.iou == pytest.approx((1 / 3, 0.5, 1 / 3))
    assert s.f1 == pytest.approx((0.5, 2 / 3, 0.5))
    assert s.oa == pytest.approx(4 / 7)
    assert s.miou == pytest.approx((1 / 3 + 0.5 + 1 / 3) / 3)
    assert s.support == (2, 3, 2)


def test_absent_class_is_skipped_in_means_but_false_positives_count():
    # class 2 never appears in target nor prediction -> NaN, excluded from the mean
    matrix = np.array([[5, 1, 0], [0, 4, 0], [0, 0, 0]])
    s = scores_from_confusion(matrix)
    assert math.isnan(s.iou[2])
    assert s.miou == pytest.approx((5 / 6 + 4 / 5) / 2)
    # class 2 predicted but absent in ground truth -> IoU 0, included
    matrix = np.array([[5, 1, 1], [0, 4, 0], [0, 0, 0]])
    assert scores_from_confusion(matrix).iou[2] == 0.0


def test_eval_classes_restrict_the_macro_mean():
    matrix = np.array([[5, 1, 0], [0, 4, 0], [0, 2, 3]])
    full = scores_from_confusion(matrix)
    part = scores_from_confusion(matrix, eval_classes=(0, 1))
    assert part.miou == pytest.approx((full.iou[0] + full.iou[1]) / 2)
    assert part.oa == full.oa  # OA always counts every labelled pixel


def test_accumulating_batches_equals_one_big_update():
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 4, (6, 16, 16), generator=gen)
    pred = torch.randint(0, 4, (6, 16, 16), generator=gen)
    whole = ConfusionMatrix(4)
    whole.update(pred, target)
    parts = ConfusionMatrix(4)
    for i in range(6):
        parts.update(pred[i], target[i])
    assert torch.equal(whole.matrix, parts.matrix)


def test_against_torchmetrics():
    tm = pytest.importorskip("torchmetrics.classification")
    gen = torch.Generator().manual_seed(1)
    k = 5
    target = torch.randint(0, k, (4, 32, 32), generator=gen)
    target[:, :3] = 255
    pred = torch.where(
        torch.rand(target.shape, generator=gen) < 0.6,
        target.clamp(max=k - 1),
        torch.randint(0, k, target.shape, generator=gen),
    )
    cm = ConfusionMatrix(k, ignore_index=255)
    cm.update(pred, target)
    ours = cm.compute()
    kwargs = {"num_classes": k, "ignore_index": 255}
    iou = tm.MulticlassJaccardIndex(average="none", **kwargs)(pred, target)
    f1 = tm.MulticlassF1Score(average="none", **kwargs)(pred, target)
    precision = tm.MulticlassPrecision(average="none", **kwargs)(pred, target)
    recall = tm.MulticlassRecall(average="none", **kwargs)(pred, target)
    oa = tm.MulticlassAccuracy(average="micro", **kwargs)(pred, target)
    kappa = tm.MulticlassCohenKappa(**kwargs)(pred, target)
    np.testing.assert_allclose(ours.iou, iou.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.f1, f1.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.precision, precision.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.recall, recall.numpy(), rtol=1e-5)
    assert ours.oa == pytest.approx(float(oa), rel=1e-5)
    assert ours.kappa == pytest.approx(float(kappa), rel=1e-4)
    assert ours.miou == pytest.approx(float(iou.mean()), rel=1e-5)
