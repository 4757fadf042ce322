"""Training the heatmap network: ``python -m pose.training --config configs/train_NAME.toml``.

The config (``config``), the data (``dataset``, ``augment``), the loop with validation and checkpoints
(``trainer``), multi-process runs (``distributed``), progress display and metrics curves.
"""
