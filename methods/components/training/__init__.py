"""What methods do around their networks to learn with missing modalities. Never registered.

Modality dropout (`dropout`), stand-ins for absent modalities in training and at inference
(`fill`), the teacher-then-student schedule (`teacher_student`) and the losses of distillation
(`distillation`, `election`, `margin`) and of feature whitening (`whitening`). The networks
these act on are the building blocks one folder up (`methods.components`).
"""
