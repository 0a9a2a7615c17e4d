"""Training: `voxpipe train RECIPE.yaml` and `voxpipe data prepare` (docs/training.md).

recipe.py (the recipe file), data.py (lhotse manifests, features, batches), trainer.py (the loop,
one process or DDP under torchrun), checkpointing.py (exact resume), progress.py (bar +
TensorBoard); loss.py, optim.py, average.py, export.py, distill.py hold the ZipVoice recipe's
loss, ScaledAdam + Eden, model averaging, the official export and distillation.
"""
