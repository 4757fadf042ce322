"""``python -m benchmarks.mmpose_reference``: our networks against MMPose's own, built from its published configs.

For each network, MMPose's ``TopdownPoseEstimator`` is built from the config file shipped in the mmpose
wheel (no pretrained init; RTMPose's and RTMW's SyncBN as plain BN, the same computation in eval mode on one
process), every parameter and BN buffer is given random values (constant inits such as BN 1/0, zero
position embeddings or LayerNorm 1/0 could hide a mismatch), its state dict is loaded strictly into
ours, and both run in eval mode on the same random input. ``--perturb`` adds 1e-3 to one weight of our
output layer after loading: the comparison must then fail (a control that it can).

OpenMMLab is an optional peer, never a dependency: install it into a separate folder (see
``INSTALL_HINT``) and put that folder on ``PYTHONPATH`` for this command only.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.metadata
import importlib.util
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import torch
from rich.console import Console
from toppose.common.config import ModelConfig
from toppose.common.console import summary_table
from toppose.common.errors import UserError, run_cli
from toppose.pose.models import build_network
from torch import nn

# name -> (config under mmpose/.mim/configs, our model setup)
NETWORKS: dict[str, tuple[str, ModelConfig]] = {
    "rtmpose_s": (
        "body_2d_keypoint/rtmpose/coco/rtmpose-s_8xb256-420e_coco-256x192.py",
        ModelConfig(family="rtmpose", backbone="cspnext_s", input_size=(192, 256), num_deconv=0),
    ),
    "hrnet_w32": (
        "body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py",
        ModelConfig(family="hrnet", backbone="hrnet_w32", input_size=(192, 256), num_deconv=0),
    ),
    "vitpose_s_classic": (
        "body_2d_keypoint/topdown_heatmap/coco/td-hm_ViTPose-small_8xb64-210e_coco-256x192.py",
        ModelConfig(family="vitpose", backbone="vit_s", input_size=(192, 256), num_deconv=2),
    ),
    "vitpose_s_simple": (
        "body_2d_keypoint/topdown_heatmap/coco/td-hm_ViTPose-small-simple_8xb64-210e_coco-256x192.py",
        ModelConfig(family="vitpose", backbone="vit_s", input_size=(192, 256), num_deconv=0),
    ),
    "rtmpose_s_halpe26": (
        "body_2d_keypoint/rtmpose/body8/rtmpose-s_8xb1024-700e_body8-halpe26-256x192.py",
        ModelConfig(family="rtmpose", backbone="cspnext_s", input_size=(192, 256), num_deconv=0, keypoints="halpe26"),
    ),
    "rtmpose_m_wholebody": (
        "wholebody_2d_keypoint/rtmpose/coco-wholebody/rtmpose-m_8xb64-270e_coco-wholebody-256x192.py",
        ModelConfig(family="rtmpose", backbone="cspnext_m", input_size=(192, 256), num_deconv=0, keypoints="wholebody"),
    ),
    **{
        f"rtmw_{size}": (
            f"wholebody_2d_keypoint/rtmpose/cocktail14/rtmw-{size}_8xb{batch}-270e_cocktail14-256x192.py",
            ModelConfig(family="rtmw", backbone=f"cspnext_{size}", input_size=(192, 256), keypoints="wholebody"),
        )
        for size, batch in (("m", 1024), ("l", 1024), ("x", 704))
    },
}
INPUT_SHAPE = (2, 3, 256, 192)
TOLERANCE = 1e-5  # largest accepted max|ours - ref| / max|ref|
PERTURBATION = 1e-3

OPENMMLAB_PACKAGES = ("mmengine", "mmcv", "mmpose", "mmdet", "mmpretrain")
OPENMMLAB = "mmengine==0.10.7 mmcv-lite==2.1.0 mmpose==1.3.2 mmdet==3.3.0 mmpretrain==1.2.0"
SMALL_DEPS = (
    "addict yapf platformdirs tqdm termcolor munkres json_tricks model-index ordered-set markdown einops terminaltables"
)
INSTALL_HINT = (
    f"install them into a separate folder DIR (not into this environment): "
    f"python -m pip install --target DIR --no-deps {OPENMMLAB} {SMALL_DEPS}, "
    f"then run PYTHONPATH=DIR python -m benchmarks.mmpose_reference from the repository root "
    f"(keep DIR off PYTHONPATH for pytest: model-index installs a top-level 'tests' package there)"
)


def _absent(module: str) -> bool:
    """Whether ``module`` cannot be found (its parent package missing counts as absent)."""
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


def _stub_op(name: str) -> Callable[..., NoReturn]:
    """A stand-in for the compiled op ``mmcv._ext.<name>`` that raises if it is ever called."""
    if name.startswith("__"):
        raise AttributeError(name)

    def op(*args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError(f"mmcv._ext.{name} is a stub: mmcv-lite has no compiled ops")

    return op


def install_import_shims() -> None:
    """Stand-ins for modules OpenMMLab imports at package level but these networks never call.

    Each applies only where the real module is absent: ``mmcv._ext`` (mmcv-lite has no compiled ops;
    ``mmcv.ops`` only checks its symbols exist, and any call raises), ``xtcocotools`` (mmpose's dataset
    and metric modules; aliased to pycocotools), ``importlib_metadata`` (mmpretrain; the standard
    library's ``importlib.metadata``) and ``shapely`` (mmdet's polygon masks; an empty package).
    """
    if not _absent("mmcv") and _absent("mmcv._ext"):
        ext = types.ModuleType("mmcv._ext")
        ext.__getattr__ = _stub_op
        sys.modules["mmcv._ext"] = ext
    if _absent("xtcocotools"):
        for part in ("", ".coco", ".cocoeval", ".mask"):
            sys.modules["xtcocotools" + part] = importlib.import_module("pycocotools" + part)
    if _absent("importlib_metadata"):
        sys.modules["importlib_metadata"] = importlib.metadata
    if _absent("shapely"):
        shapely, geometry = types.ModuleType("shapely"), types.ModuleType("shapely.geometry")
        shapely.__path__, shapely.geometry = [], geometry
        sys.modules.update({"shapely": shapely, "shapely.geometry": geometry})


def reference_builder() -> tuple[Callable[[str], nn.Module], str]:
    """A function building MMPose's estimator from a config path, and the mmpose version.

    Raises :class:`UserError` with install instructions when OpenMMLab is not importable.
    """
    install_import_shims()
    missing = [package for package in OPENMMLAB_PACKAGES if _absent(package)]
    if missing:
        raise UserError(f"OpenMMLab reference packages not importable ({', '.join(missing)}); {INSTALL_HINT}")
    # Their releases predate this torch: silence its deprecation notices about their code.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"mm(cv|det|engine|pose|pretrain)\.")
    try:
        import mmdet  # noqa: F401  (the reference RTMPose's backbone is mmdet's CSPNeXt)
        import mmpose
        import mmpose.codecs  # noqa: F401  (registers the codecs the heads build as decoders)
        import mmpose.models  # noqa: F401  (registers backbones, necks, heads and estimators)
        import mmpretrain  # noqa: F401  (the reference ViTPose's backbone is mmpretrain's ViT)
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmpose.registry import MODELS
    except (ImportError, AssertionError) as err:  # a small dependency missing, or mmdet's mmcv version check
        raise UserError(f"OpenMMLab reference packages not importable ({err}); {INSTALL_HINT}") from None
    # Not mmpose.utils.register_all_modules: it also imports mmpose.apis, which needs pkg_resources.
    init_default_scope("mmpose")
    config_root = Path(mmpose.__file__).parent / ".mim" / "configs"

    def build(config: str) -> nn.Module:
        model_cfg = copy.deepcopy(Config.fromfile(config_root / config).model)
        model_cfg.backbone.pop("init_cfg", None)  # no pretrained download
        for part in (model_cfg.backbone, model_cfg.get("neck", {})):  # RTMW's neck has SyncBN too
            if part.get("norm_cfg") == {"type": "SyncBN"}:
                part.norm_cfg = {"type": "BN", "eps": 1e-5}  # SyncBN's default eps
        return MODELS.build(model_cfg).eval()

    return build, mmpose.__version__


def randomise(model: nn.Module, gen: torch.Generator) -> None:
    """Random BN statistics and affine parameters, and noise on every parameter that starts constant."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen) * 0.2)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.2)
        for param in model.parameters():
            if param.numel() == 1 or float(param.std()) == 0.0:
                param.add_(torch.randn(param.shape, generator=gen) * 0.2)


def named_outputs(output: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A network's output by name: heatmaps, or the SimCC x and y vectors."""
    if isinstance(output, torch.Tensor):
        return {"heatmaps": output}
    return dict(zip(("simcc_x", "simcc_y"), output, strict=True))


def perturb(model: nn.Module) -> str:
    """Add :data:`PERTURBATION` to element 0 of the output layer's weight; returns its name."""
    name, param = [(n, p) for n, p in model.named_parameters() if n.endswith(".weight") and p.dim() > 1][-1]
    with torch.no_grad():
        param.view(-1)[0] += PERTURBATION
    return name


def compare(name: str, build_reference: Callable[[str], nn.Module], perturbed: bool) -> tuple[list[str], bool]:
    """One network against its reference: its lines for the table, and whether it passes."""
    config, model_cfg = NETWORKS[name]
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    ref = build_reference(config)
    randomise(ref, gen)
    ours = build_network(model_cfg).eval()
    ref_state, our_keys = ref.state_dict(), set(ours.state_dict())
    keys = f"keys {len(ref_state)}/{len(our_keys)} (ref/ours)"
    if set(ref_state) != our_keys:
        only_ref, only_ours = len(set(ref_state) - our_keys), len(our_keys - set(ref_state))
        return [f"{keys}, match no: {only_ref} only in ref, {only_ours} only in ours", "FAILS"], False
    try:
        ours.load_state_dict(ref_state, strict=True)
    except RuntimeError:
        return [f"{keys}, match yes, but shapes differ", "FAILS"], False
    lines = [f"{keys}, match yes"]
    if perturbed:
        lines.append(f"perturbed: {perturb(ours)}, first element +{PERTURBATION:g}")
    x = torch.randn(INPUT_SHAPE, generator=gen)
    with torch.no_grad():
        ref_out, our_out = named_outputs(ref(x.clone(), None, mode="tensor")), named_outputs(ours(x.clone()))
    shapes = {key: tuple(out.shape) for key, out in ref_out.items()}
    if shapes != {key: tuple(out.shape) for key, out in our_out.items()}:
        return [*lines, f"output shapes differ from the reference's {shapes}", "FAILS"], False
    max_diff = max(float((ref_out[key] - our_out[key]).abs().max()) for key in ref_out)
    relative = max_diff / max(float(out.abs().max()) for out in ref_out.values())
    passed = relative <= TOLERANCE
    verdict = "identical" if max_diff == 0.0 else ("within tolerance" if passed else "FAILS")
    return [*lines, f"max abs diff {max_diff:.3g}, relative {relative:.3g}: {verdict}"], passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mmpose_reference", description=__doc__.splitlines()[0])
    parser.add_argument("networks", nargs="*", metavar="NETWORK", help=f"any of {', '.join(NETWORKS)} (default: all)")
    parser.add_argument("--perturb", action="store_true", help=f"add {PERTURBATION:g} to one of our weights: must fail")
    args = parser.parse_args(argv)
    unknown = [name for name in args.networks if name not in NETWORKS]
    if unknown:
        raise UserError(f"unknown network '{unknown[0]}' (choose from {', '.join(NETWORKS)})")
    build_reference, version = reference_builder()
    rows: list[tuple[str, str]] = []
    passed = True
    for name in args.networks or NETWORKS:
        lines, ok = compare(name, build_reference, args.perturb)
        rows += [(name if i == 0 else "", line) for i, line in enumerate(lines)]
        passed &= ok
    console = Console()
    console.print(
        f"MMPose {version} reference vs ours: random weights, input {INPUT_SHAPE}, fp32, eval mode; "
        f"relative = max abs diff / max |ref|, tolerance {TOLERANCE:g}"
    )
    console.print(summary_table("our networks against MMPose's", rows))
    return 0 if passed else 1


if __name__ == "__main__":
    run_cli(main)
