"""The public checkpoints we know: where each lives (URL, sha256 prefix of the file) and the setup it was trained
in (family, backbone, input size, pixel convention, channel order, keypoint set; the codec is its family's), with
the figure its model-zoo table reports. Figures and file names are MMPose's model zoo:

* SimpleBaseline: ``configs/body_2d_keypoint/topdown_heatmap/coco/resnet_coco.md`` (0.x-era files);
* HRNet: ``hrnet_coco.md``, ``hrnet_dark_coco.md``, ``hrnet_udp_coco.md`` (1.x files);
* ViTPose: ``vitpose_coco.md``;
* RTMPose: ``configs/body_2d_keypoint/rtmpose/coco/rtmpose_coco.md`` (trained on COCO, or AIC + COCO);
* RTMPose Halpe-26 (body and feet, trained on Body8) and COCO-WholeBody-133 (RTMPose, DWPose's distilled
  students, and RTMW trained on the Cocktail14 datasets): ``projects/rtmpose/README.md``, whose tables give the
  Body8 AUC and the COCO-WholeBody whole AP (RTMW's also in ``configs/wholebody_2d_keypoint/rtmpose/cocktail14/
  rtmw_cocktail14.yml``).

The file names carry the first 8 hex digits of the file's sha256, except three that publish no hash: RTMW-m and
RTMW-l's (``rtmw_m_256x192``, ``rtmw_l_256x192``, ``rtmw_l_384x288``). Their :attr:`RegistryEntry.sha256_prefix`
is ``None``, and the cache records their sha256 when it downloads them and checks it at every later use
(:func:`common.weights.fetch_checkpoint`).

All were trained on RGB frames by MMPose: the non-UDP configs (``TopdownAffine`` without ``use_udp``,
``MSRAHeatmap``/``SimCCLabel``) in the legacy convention, the UDP ones and ViTPose in the UDP convention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from toppose.pose.models import FAMILIES

MMPOSE = "https://download.openmmlab.com/mmpose/"
SIMPLEBASELINE_URL = MMPOSE + "top_down/resnet/"
TOPDOWN_V1_URL = MMPOSE + "v1/body_2d_keypoint/topdown_heatmap/coco/"
RTMPOSE_URL = MMPOSE + "v1/projects/rtmposev1/"
RTMW_URL = MMPOSE + "v1/projects/rtmw/"
HASH_IN_NAME = re.compile(r"-([0-9a-f]{8})_\d{8}\.pth$")


@dataclass(frozen=True)
class RegistryEntry:
    """A public checkpoint: where it lives, the network it fits, how it was trained."""

    url: str
    family: str
    backbone: str
    input_size: tuple[int, int]  # (width, height)
    published_ap: float  # the headline figure of its model-zoo table, of ``published_metric``
    convention: str = "legacy"  # pixel convention of its training pipeline (pose/geometry.py)
    num_deconv: int = 0  # deconvolutions of the head (SimpleBaseline 3, ViTPose classic 2)
    channel_order: str = "rgb"  # of the frames it was trained on
    keypoints: str = "coco17"  # the keypoint set it outputs (common/keypoint_sets.py)
    # COCO val2017 keypoint AP (person detector, flip test) for COCO-17; Halpe-26: the AUC on MMPose's Body8
    # benchmark; COCO-WholeBody: the whole-body AP on COCO-WholeBody val
    published_metric: str = "COCO AP"

    @property
    def codec(self) -> str:
        """What its network outputs: its family's codec."""
        return FAMILIES[self.family].codec

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def sha256_prefix(self) -> str | None:
        """The hash part of the file name: the first 8 hex digits of the file's sha256; ``None`` where the name
        publishes none (RTMW-m/l)."""
        found = HASH_IN_NAME.search(self.file_name)
        return found.group(1) if found else None

    def setup(self) -> dict[str, Any]:
        """The model-setup fields this checkpoint fixes (dotted config names)."""
        width, height = self.input_size
        large = height > 256  # the 384x288 configs use wider Gaussians
        fields: dict[str, Any] = {
            "model.family": self.family,
            "model.backbone": self.backbone,
            "model.input_size": self.input_size,
            "model.heatmap_size": (width // 4, height // 4),
            "model.num_deconv": self.num_deconv,
            "model.channel_order": self.channel_order,
            "model.keypoints": self.keypoints,
            "codec.type": self.codec,
            "codec.convention": self.convention,
        }
        if self.codec == "simcc":
            fields["codec.simcc_sigma"] = (6.0, 6.93) if large else (4.9, 5.66)
        else:
            fields["codec.sigma"] = 3.0 if large else 2.0
        return fields


def _simplebaseline(depth: int, size: str, stamp: str, ap: float) -> tuple[str, RegistryEntry]:
    height, width = (int(v) for v in size.split("x"))
    url = f"{SIMPLEBASELINE_URL}res{depth}_coco_{size}-{stamp}.pth"
    entry = RegistryEntry(url, "simplebaseline", f"resnet{depth}", (width, height), ap, num_deconv=3)
    return f"simplebaseline_res{depth}_coco_{size}", entry


def _hrnet(width: int, variant: str, size: str, stamp: str, ap: float) -> tuple[str, RegistryEntry]:
    height, input_width = (int(v) for v in size.split("x"))
    batch = "8xb64" if width == 32 else "8xb32"
    tag = f"_{variant}-" if variant else "_"
    url = f"{TOPDOWN_V1_URL}td-hm_hrnet-w{width}{tag}{batch}-210e_coco-{size}-{stamp}.pth"
    convention = "udp" if variant == "udp" else "legacy"
    entry = RegistryEntry(url, "hrnet", f"hrnet_w{width}", (input_width, height), ap, convention)
    return f"hrnet_w{width}{'_' + variant if variant else ''}_coco_{size}", entry


def _vitpose(size: str, simple: bool, stamp: str, ap: float) -> tuple[str, RegistryEntry]:
    name = {"s": "small", "b": "base", "l": "large", "h": "huge"}[size]
    url = f"{TOPDOWN_V1_URL}td-hm_ViTPose-{name}{'-simple' if simple else ''}_8xb64-210e_coco-256x192-{stamp}.pth"
    entry = RegistryEntry(url, "vitpose", f"vit_{size}", (192, 256), ap, "udp", num_deconv=0 if simple else 2)
    return f"vitpose_{size}{'_simple' if simple else ''}_coco_256x192", entry


def _rtmpose(size: str, data: str, input_size: str, stamp: str, ap: float) -> tuple[str, RegistryEntry]:
    height, width = (int(v) for v in input_size.split("x"))
    url = (
        f"{RTMPOSE_URL}rtmpose-{'tiny' if size == 't' else size}_simcc-{data}_pt-aic-coco_420e-{input_size}-{stamp}.pth"
    )
    entry = RegistryEntry(url, "rtmpose", f"cspnext_{size}", (width, height), ap)
    return f"rtmpose_{size}_{data}_{input_size}", entry


def _rtmpose_halpe26(size: str, input_size: str, stamp: str, auc: float) -> tuple[str, RegistryEntry]:
    """RTMPose trained on Body8 for Halpe-26 (body and feet): MMPose's ``body26`` alias."""
    height, width = (int(v) for v in input_size.split("x"))
    url = f"{RTMPOSE_URL}rtmpose-{size}_simcc-body7_pt-body7-halpe26_700e-{input_size}-{stamp}.pth"
    entry = RegistryEntry(url, "rtmpose", f"cspnext_{size}", (width, height), auc, keypoints="halpe26",
                          published_metric="Body8 AUC")  # fmt: skip
    return f"rtmpose_{size}_body8_halpe26_{input_size}", entry


def _rtmpose_wholebody(size: str, data: str, input_size: str, stamp: str, ap: float) -> tuple[str, RegistryEntry]:
    """RTMPose for COCO-WholeBody-133: trained on it (``coco-wholebody_pt-aic-coco``), or DWPose's students
    distilled on UBody-COCO (``ucoco_dw-ucoco``)."""
    height, width = (int(v) for v in input_size.split("x"))
    url = f"{RTMPOSE_URL}rtmpose-{size}_simcc-{data}_270e-{input_size}-{stamp}.pth"
    entry = RegistryEntry(url, "rtmpose", f"cspnext_{size}", (width, height), ap, keypoints="wholebody",
                          published_metric="COCO-WholeBody AP")  # fmt: skip
    name = f"dwpose_{size}_{input_size}" if data.startswith("ucoco") else f"rtmpose_{size}_coco_wholebody_{input_size}"
    return name, entry


def _rtmw(size: str, file_name: str, ap: float) -> tuple[str, RegistryEntry]:
    """RTMW (COCO-WholeBody-133, trained on Cocktail14); RTMW-m/l were distilled from a larger RTMW
    (``rtmw-dw-l-m``, ``rtmw-dw-x-l``), and their file names publish no hash."""
    height, width = (int(v) for v in re.search(r"-(\d+)x(\d+)-", file_name).groups())
    entry = RegistryEntry(RTMW_URL + file_name, "rtmw", f"cspnext_{size}", (width, height), ap, keypoints="wholebody",
                          published_metric="COCO-WholeBody AP")  # fmt: skip
    return f"rtmw_{size}_{height}x{width}", entry


REGISTRY: dict[str, RegistryEntry] = dict(
    [
        _simplebaseline(50, "256x192", "ec54d7f3_20200709", 71.8),
        _simplebaseline(50, "384x288", "e6f795e9_20200709", 73.1),
        _simplebaseline(101, "256x192", "6e6babf0_20200708", 72.6),
        _simplebaseline(101, "384x288", "8c71bdc9_20200709", 74.9),
        _simplebaseline(152, "256x192", "f6e307c2_20200709", 73.5),
        _simplebaseline(152, "384x288", "3860d4c9_20200709", 75.0),
        _hrnet(32, "", "256x192", "81c58e40_20220909", 74.9),
        _hrnet(32, "", "384x288", "ca5956af_20220909", 76.1),
        _hrnet(48, "", "256x192", "0e67c616_20220913", 75.6),
        _hrnet(48, "", "384x288", "c161b7de_20220915", 76.7),
        _hrnet(32, "dark", "256x192", "0e00bf12_20220914", 75.7),
        _hrnet(32, "dark", "384x288", "9bab4c9b_20220917", 76.6),
        _hrnet(48, "dark", "256x192", "e1ebdd6f_20220913", 76.4),
        _hrnet(48, "dark", "384x288", "39c3c381_20220916", 77.2),
        _hrnet(32, "udp", "256x192", "73ede547_20220914", 76.2),
        _hrnet(32, "udp", "384x288", "9a3f7c85_20220914", 76.8),
        _hrnet(48, "udp", "256x192", "3feaef8f_20220913", 76.8),
        _hrnet(48, "udp", "384x288", "70d7ab01_20220913", 77.3),
        _vitpose("s", False, "62d7a712_20230314", 73.9),
        _vitpose("b", False, "216eae50_20230314", 75.7),
        _vitpose("l", False, "53609f55_20230314", 78.2),
        _vitpose("h", False, "e32adcd4_20230314", 78.8),
        _vitpose("s", True, "4c101a76_20230314", 73.6),
        _vitpose("b", True, "0b8234ea_20230407", 75.6),
        _vitpose("l", True, "3a7ee9e1_20230314", 78.0),
        _vitpose("h", True, "ffd48c05_20230314", 78.9),
        _rtmpose("t", "coco", "256x192", "e613ba3f_20230127", 68.2),
        _rtmpose("s", "coco", "256x192", "8edcf0d7_20230127", 71.6),
        _rtmpose("m", "coco", "256x192", "d8dd5ca4_20230127", 74.6),
        _rtmpose("l", "coco", "256x192", "1352a4d2_20230127", 75.8),
        _rtmpose("t", "aic-coco", "256x192", "cfc8f33d_20230126", 68.5),
        _rtmpose("s", "aic-coco", "256x192", "fcb2599b_20230126", 72.2),
        _rtmpose("m", "aic-coco", "256x192", "63eb25f7_20230126", 75.8),
        _rtmpose("l", "aic-coco", "256x192", "f016ffe0_20230126", 76.5),
        _rtmpose("m", "aic-coco", "384x288", "a62a0b32_20230228", 77.0),
        _rtmpose("l", "aic-coco", "384x288", "97d6cb0f_20230228", 77.3),
        _rtmpose_halpe26("t", "256x192", "6020f8a6_20230605", 66.35),
        _rtmpose_halpe26("s", "256x192", "7f134165_20230605", 68.62),
        _rtmpose_halpe26("m", "256x192", "4d3e73dd_20230605", 71.91),
        _rtmpose_halpe26("l", "256x192", "2abb7558_20230605", 73.19),
        _rtmpose_halpe26("m", "384x288", "89e6428b_20230605", 73.56),
        _rtmpose_halpe26("l", "384x288", "734182ce_20230605", 74.38),
        _rtmpose_wholebody("m", "coco-wholebody_pt-aic-coco", "256x192", "cd5e845c_20230123", 58.2),
        _rtmpose_wholebody("l", "coco-wholebody_pt-aic-coco", "256x192", "6f206314_20230124", 61.1),
        _rtmpose_wholebody("l", "coco-wholebody_pt-aic-coco", "384x288", "eaeb96c8_20230125", 64.8),
        _rtmpose_wholebody("t", "ucoco_dw-ucoco", "256x192", "dcf277bf_20230728", 48.5),
        _rtmpose_wholebody("s", "ucoco_dw-ucoco", "256x192", "3fd922c8_20230728", 53.8),
        _rtmpose_wholebody("m", "ucoco_dw-ucoco", "256x192", "c8b76419_20230728", 60.6),
        _rtmpose_wholebody("l", "ucoco_dw-ucoco", "256x192", "4d6dfc62_20230728", 63.1),
        _rtmpose_wholebody("l", "ucoco_dw-ucoco", "384x288", "2438fd99_20230728", 66.5),
        _rtmw("m", "rtmw-dw-l-m_simcc-cocktail14_270e-256x192-20231122.pth", 58.2),
        _rtmw("l", "rtmw-dw-x-l_simcc-cocktail14_270e-256x192-20231122.pth", 66.0),
        _rtmw("l", "rtmw-dw-x-l_simcc-cocktail14_270e-384x288-20231122.pth", 70.1),
        _rtmw("x", "rtmw-x_simcc-cocktail14_pt-ucoco_270e-256x192-13a2546d_20231208.pth", 67.2),
        _rtmw("x", "rtmw-x_simcc-cocktail14_pt-ucoco_270e-384x288-f840f204_20231122.pth", 70.2),
    ]
)
