"""Training a pose network of any zoo family: ``toppose train --config configs/train_NAME.toml``.

The config (``config``), the data (``dataset``, ``augment``), the losses (``losses``), the loop with
validation and checkpoints (``trainer``), multi-process runs (``distributed``), progress display and
metrics curves.
"""
