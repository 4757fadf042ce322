"""A setup's pose network as an ONNX file, checked against torch (``toppose export``).

    toppose export --setup fast -o rtmpose-s.onnx
    toppose export --config configs/hrnet_w32_udp_256x192.toml --pose-weights W.pth -o hrnet.onnx

The setup and its weights are read as ``run.py`` reads them (``--setup``, ``--config``, ``--pose-weights``
and the other model flags). The graph takes ``uint8`` BGR person crops ``(N, H, W, 3)`` with a dynamic
batch axis and normalizes them inside (see :mod:`pose.onnx_export`); it runs in fp32. Where onnxruntime
is installed, the file's outputs on random crops are compared with the torch network's (fp32, the
estimator's own input path) before it is written: a difference beyond ``--tolerance`` times the largest
output is an error.
The file is written atomically.
"""

from __future__ import annotations

import numpy as np
import torch
from toppose.common.config import Config
from toppose.common.errors import UserError
from toppose.pose.inference import TopDownEstimator
from toppose.pose.onnx_export import INPUT_NAME
from toppose.pose.runtime import ort_session

CHECK_BATCHES = (1, 3)  # batch sizes the check runs: neither is the traced one (2), so the batch axis is tested


def max_difference(graph: bytes, reference: TopDownEstimator, cfg: Config, seed: int = 0) -> tuple[float, float]:
    """The largest absolute difference between ONNX Runtime's outputs of ``graph`` and those of the torch
    estimator ``reference`` on random crops over :data:`CHECK_BATCHES`, and the largest absolute output of torch's."""
    session = ort_session(graph, torch.get_num_threads())
    width, height = cfg.model.input_size
    rng = np.random.default_rng(seed)
    difference = scale = 0.0
    for batch in CHECK_BATCHES:
        crops = rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
        expected = reference.network_outputs(crops)
        outputs = session.run(None, {INPUT_NAME: crops})
        if [o.shape for o in outputs] != [e.shape for e in expected]:
            raise UserError(f"the ONNX graph's output shapes {[o.shape for o in outputs]} differ from torch's")
        for output, wanted in zip(outputs, expected, strict=True):
            difference = max(difference, float(np.abs(output - wanted).max()))
            scale = max(scale, float(np.abs(wanted).max()))
    return difference, scale


if __name__ == "__main__":  # a checkout's python -m alias of `toppose export`
    from toppose.cli import alias

    alias("export")
