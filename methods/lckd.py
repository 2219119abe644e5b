"""LCKD: learnable cross-modal knowledge distillation, with teachers elected on validation.

Wang et al., "Learnable Cross-modal Knowledge Distillation for Multi-modal Learning with
Missing Modality", MICCAI 2023. One encoder, weight-shared by every modality, encodes each
present modality; a missing modality's features are the mean of the present ones; the
modalities' features are concatenated scale by scale and decoded. At every validation each
modality is scored alone and, per class, the best one is elected teacher; training adds

    L = CE + kd_weight * sum_{t in teachers, present} sum_{s present, s != t} |sg(f_t) - f_s|

on the deepest (stride-32) features, so every present modality is pulled towards the elected
teachers and never the reverse. The first `full_fraction` of the budget trains on complete
inputs (LCKD: 80k of 195k iterations); after that every batch keeps a random subset of the
modalities drawn as LCKD's `DualNet` draws it (billhhh/LCKD@5ba51b5): a size k uniform in
1..M-1, then k modalities uniformly, so never the full set and never the empty one. Until the
first validation has elected anybody there is no teacher and no distillation term.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from benchmark.api import (
    Batch,
    DatasetSpec,
    HParam,
    Method,
    Paper,
    Scenario,
    Search,
    TrainContext,
    availability_matrix,
    encode_present,
    labels_of,
    mean_fill_invalid,
    register_method,
    zero_fill_missing,
)
from methods.components import ConcatFusion, FPNDecoder, SegmentationHead
from methods.components.shared_encoder import NORMS, SharedEncoder
from methods.components.training.dropout import SubsetSampler, sampler_hparams
from methods.components.training.election import elect_teachers, teacher_l1
from methods.components.training.fill import complete_with_mean, replace_dropped, shared_fill
from methods.components.training.partial import complete_partial, others, valid_shares


@register_method("lckd")
class LCKD(Method):
    """Weight-shared encoder, mean fill, per-class teachers elected on validation, L1 to them."""

    SUMMARY = (
        "One weight-shared encoder (modality stems), mean fill of missing features, concat "
        "fusion; per class the best single modality on validation is elected teacher and every "
        "present modality's bottleneck is pulled (L1) towards the detached teachers'."
    )
    MISSING_MODALITY = "fills its features with the mean of the present modalities' features"
    INVALID_PIXELS = (
        "fills invalid cells as a missing modality: the mean of the other present modalities' "
        "features, blended per cell by its share of valid pixels"
    )
    TRAIN_MISSING = (
        "a sample's absent modality skips its stem and norms (`encode_present`) and is filled "
        "like a dropped one (mean of its present features); teachers distil only into samples "
        "that have both teacher and student"
    )
    PAPER = Paper(
        title="Learnable Cross-modal Knowledge Distillation for Multi-modal Learning with "
        "Missing Modality",
        venue="MICCAI",
        year=2023,
        link="https://arxiv.org/abs/2310.01035",
    )
    DEVIATIONS = (
        "Segmentation classes stand in for the paper's tumour sub-regions: a teacher is elected "
        "per class by single-modality validation IoU (the paper: per task by Dice).",
        "2-D timm encoders with the suite's concat fusion and FPN decoder instead of the paper's "
        "3-D U-Net with skips from the shared encoder; modalities with different band counts "
        "enter the shared trunk through their own stems (the paper's MRI modalities are all "
        "one channel).",
        "One AdamW one-cycle schedule over the suite's budget with the full-modality warm-up as "
        "its first `full_fraction` (0.41 = the paper's 80k of 195k iterations), not two SGD "
        "runs; class-weighted CE instead of Dice + BCE.",
        "Teachers are elected at the suite's validations (`val_checks` per run; the paper every "
        "5k iterations); before the first one nobody is elected and the L1 term is zero.",
        "The trunk's convs are shared but its batch norms are private per modality by default: "
        "with norms shared over one concatenated batch, the students' L1 would reach the "
        "teachers' stems through the batch statistics despite the stop-gradient (the paper "
        "runs each modality through the encoder as its own batch, so training normalises per "
        "modality while its running statistics pool them).",
        "The distillation L1 is averaged over feature elements (the paper sums a norm), so "
        "kd_weight = 0.1 weighs a per-element mean.",
        "The random stage's draw is LCKD's (a size in 1..M-1, then a subset; never the full "
        "set), per batch; with one modality there is nothing to drop and it keeps it. An "
        "earlier version drew uniformly over every non-empty subset, the full set included.",
        "A dropped modality's real input is encoded and its features replaced by the mean "
        "after encoding; the official code zero-fills a dropped input and encodes the zeros, "
        "so they enter the shared encoder's batch statistics. A sample that lacks a modality "
        "under `--train-missing` has nothing real to encode: it skips that modality's stem and "
        "norms (`encode_present`).",
    )
    HPARAMS = {
        "kd_weight": HParam(
            0.1,
            "weight of the L1 towards elected teachers (paper: 0.1)",
            low=0.0,
            high=10.0,
            search=Search.decades(1),
        ),
        "full_fraction": HParam(
            0.41,
            "share of the budget trained on complete inputs first (paper: 80k/195k)",
            low=0,
            high=1,
        ),
        "shared_norm": HParam(
            "private",
            "shared-trunk batch norm: per modality (default; keeps the teachers' branches out of "
            "the students' batch statistics) or tied across modalities",
            choices=NORMS,
            search=Search.categorical("private", "shared", note="both norms the code keeps"),
        ),
        **sampler_hparams("random-missing stage"),
        "subset_weights": HParam(
            (),
            "random-missing stage: relative probabilities of the subsets it draws, every "
            "non-empty subset but the full set, by decreasing size and name "
            "(benchmark.core.scenarios order); empty = LCKD's draw, a size uniform in 1..M-1 "
            "then a subset of that size uniformly",
        ),
        "sampling": HParam(
            "batch",
            "random-missing stage: a subset per batch (LCKD) or per sample",
            choices=("sample", "batch"),
        ),
    }

    def __init__(
        self, spec: DatasetSpec, hparams: Mapping[str, Any], context: TrainContext
    ) -> None:
        super().__init__(spec, hparams, context)
        hp = self.hparams
        self.encoder = SharedEncoder(
            hp["backbone"], self.channels, hp["weights"], norm=hp["shared_norm"]
        )
        channels = self.encoder.channels
        self.fusion = ConcatFusion(channels, len(self.modalities))
        self.decoder = FPNDecoder(channels, hp["decoder_channels"])
        self.head = SegmentationHead(hp["decoder_channels"], spec.num_classes)
        self.sampler = SubsetSampler(
            self.modalities,
            hp["subset_weights"],
            hp["sampling"],
            include_full=len(self.modalities) < 2,  # LCKD never draws the full set
            by_size=True,
        )
        self.random_from = round(hp["full_fraction"] * context.total_steps)
        self.register_buffer("elected", torch.full((spec.num_classes,), -1, dtype=torch.long))
        """Per class: index (in `modalities`) of the elected teacher, -1 while none."""
        self.register_buffer("elections", torch.zeros((), dtype=torch.long))
        self.configure_optimizer(self.parameters())

    @property
    def teachers(self) -> list[str]:
        """The modalities elected teacher for at least one class."""
        chosen = {int(i) for i in self.elected.tolist() if i >= 0}
        return [m for i, m in enumerate(self.modalities) if i in chosen]

    def feedback_scenarios(self) -> tuple[Scenario, ...]:
        """Every modality alone: the election's candidates."""
        if len(self.modalities) < 2:
            return ()
        return tuple(Scenario(frozenset({m})) for m in self.modalities)

    def observe_validation(self, iou: Mapping[Scenario, Sequence[float]], step: int) -> None:
        """Re-elect the teachers from single-modality validation IoU (every validation)."""
        single = {next(iter(s.present)): values for s, values in iou.items() if len(s.present) == 1}
        elected = elect_teachers(single, self.modalities)
        self.elected.copy_(torch.tensor(elected, dtype=torch.long))
        self.elections += 1

    def decode(self, features: Mapping[str, list[Tensor]], size: tuple[int, int]) -> Tensor:
        fused = self.fusion([features[m] for m in self.modalities])
        return self.head(self.decoder(fused), size)

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        inputs = zero_fill_missing(batch, self.modalities)
        mask = labels_of(batch)
        available = availability_matrix(batch, self.modalities)
        drawn = self.sampler.sample_available(available)  # drawn every step: one RNG stream
        keep = available if step < self.random_from else drawn
        keep = self.sampler.as_dict(keep)
        with self.autocast():
            # a sample lacking a modality skips its stem and private norms (`encode_present`)
            have = self.sampler.as_dict(available)
            encoded = encode_present(self.encoder, inputs, have)
            features = replace_dropped(encoded, shared_fill(encoded, keep), keep, self.modalities)
            logits = self.decode(features, tuple(mask.shape[-2:]))
        ce = self.segmentation_loss(logits, mask)
        bottleneck = {m: encoded[m][-1].float() for m in self.modalities}
        kd = teacher_l1(bottleneck, keep, self.teachers)
        loss = ce + self.hparams["kd_weight"] * kd
        self.optimisation_step(loss)
        return {"loss": float(loss.detach()), "ce": float(ce.detach()), "kd": float(kd.detach())}

    def predict(self, inputs: Mapping[str, Tensor]) -> Tensor:
        present = {m: inputs[m] for m in self.modalities if m in inputs}
        first = next(iter(present.values()))
        with self.autocast():
            encoded = complete_with_mean(self.encoder(present), self.modalities)
            return self.decode(encoded, tuple(first.shape[-2:])).float()

    def predict_partial(
        self, inputs: Mapping[str, Tensor], validity: Mapping[str, Tensor]
    ) -> Tensor:
        """Invalid pixels filled as a missing modality is, cell by cell: with the mean of the
        other present modalities' features (`methods.components.training.partial`)."""
        present = mean_fill_invalid(
            {m: inputs[m] for m in self.modalities if m in inputs}, validity
        )
        first = next(iter(present.values()))
        with self.autocast():
            encoded = self.encoder(present)
            shares = valid_shares(validity, next(iter(encoded.values())))
            encoded = complete_partial(encoded, shares, self.modalities, others(encoded))
            return self.decode(encoded, tuple(first.shape[-2:])).float()

    def diagnostics(self) -> dict[str, float]:
        """How often teachers were elected, and which modalities are teachers now."""
        out = {"elections": float(self.elections)}
        teachers = set(self.teachers)
        out.update({f"teacher_{m}": float(m in teachers) for m in self.modalities})
        return out


__all__ = ["LCKD"]
