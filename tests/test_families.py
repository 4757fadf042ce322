"""A pose family is one description in its module: registered, it is a choice of the config, its checkpoints are
recognised by their signature and renamed by its hook, and the builder builds it; each family's description
agrees with the networks its module builds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from toppose.common.config import FAMILY_BACKBONES, Config, ModelConfig, load_config
from toppose.common.errors import ConfigError, UserError
from toppose.common.schema import NUM_KEYPOINTS
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.models import FAMILIES, FamilySpec, build_network, family_of_keys, register_family
from toppose.pose.registry import REGISTRY, RegistryEntry
from toppose.pose.setup import apply_weights_setup
from torch import nn

TOY_TOML = "[model]\nfamily = 'toypose'\nbackbone = 'toy_8'\ninput_size = [32, 64]\nheatmap_size = [8, 16]\n"
TOY_FILE = "toypose_8_coco-0123abcd_20240101.pth"


class ToyNet(nn.Module):
    """The smallest pose network: a stride-4 convolution, then a 1x1 one to one heatmap per keypoint."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.trunk = nn.Conv2d(3, width, 4, stride=4)
        self.toy_head = nn.Conv2d(width, NUM_KEYPOINTS, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.toy_head(self.trunk(images))


TOY = FamilySpec(
    name="toypose",
    title="ToyPose",
    backbones=("toy_8", "toy_16"),
    codec="heatmap",
    input_multiple=4,
    heatmap_stride=lambda model_cfg: 4,
    signature="toy_head.weight",
    to_model_keys=lambda state, model: {key.removeprefix("net."): value for key, value in state.items()},
    build=lambda model_cfg, split_ratio: ToyNet(int(model_cfg.backbone.removeprefix("toy_"))),
)


@pytest.fixture
def toy_family() -> Iterator[FamilySpec]:
    """ToyPose registered for one test; the registries as they were afterwards."""
    saved = [(registry, dict(registry)) for registry in (FAMILIES, FAMILY_BACKBONES)]
    yield register_family(TOY)
    for registry, content in saved:
        registry.clear()
        registry.update(content)


def test_a_new_family_is_its_description_and_registry_rows(
    toy_family: FamilySpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "toy.toml"
    config.write_text(TOY_TOML)
    network = build_network(load_config(config).model)
    assert isinstance(network, ToyNet) and network(torch.zeros(1, 3, 64, 32)).shape == (1, NUM_KEYPOINTS, 16, 8)

    # A registry row: its setup completes the config, its file (in the toy's published layout, cached) loads.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    published = tmp_path / "hub" / "checkpoints" / TOY_FILE
    published.parent.mkdir(parents=True)
    state = {key: torch.randn_like(value) for key, value in ToyNet(8).state_dict().items()}
    torch.save({"state_dict": {"net." + key: value for key, value in state.items()}}, published)
    entry = RegistryEntry(f"https://example.invalid/{TOY_FILE}", "toypose", "toy_8", (32, 64), 50.0)
    monkeypatch.setitem(REGISTRY, "toypose_8_coco_64x32", entry)
    cfg = Config()
    cfg.model.weights = "toypose_8_coco_64x32"
    apply_weights_setup(cfg, explicit={})
    assert (cfg.model.family, cfg.model.heatmap_size, cfg.codec.type) == ("toypose", (8, 16), "heatmap")
    loaded = build_pose_model(cfg.model).state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], v) for k, v in state.items())

    # Its signature tells its files from other families'.
    with pytest.raises(UserError, match="this is a ToyPose checkpoint, not a SimpleBaseline one"):
        build_pose_model(ModelConfig(backbone="resnet18"), weights=str(published))


def test_an_unregistered_family_is_no_choice_of_the_config(tmp_path: Path) -> None:
    config = tmp_path / "toy.toml"
    config.write_text(TOY_TOML)
    with pytest.raises(ConfigError) as info:
        load_config(config)
    expected = "[model] family: expected one of 'simplebaseline', 'hrnet', 'vitpose', 'rtmpose', 'rtmw', got 'toypose'"
    assert str(info.value) == f"{config} {expected}"


def test_registering_refuses_a_taken_name_an_unknown_codec_and_an_unknown_base(toy_family: FamilySpec) -> None:
    with pytest.raises(ValueError, match="registered already"):
        register_family(TOY)
    with pytest.raises(ValueError, match="unknown codec 'depth'"):
        register_family(dataclasses.replace(TOY, name="toydepth", codec="depth"))
    with pytest.raises(ValueError, match="extends 'toyless', which is not registered"):
        register_family(dataclasses.replace(TOY, name="toyplus", extends="toyless"))


def test_an_extension_s_files_are_its_own_and_its_base_s_stay_the_base_s(toy_family: FamilySpec) -> None:
    """A family that extends another carries the base's signature too: its own decides, in either order."""
    plus = register_family(dataclasses.replace(TOY, name="toyplus", signature="plus_head.weight", extends="toypose"))
    assert family_of_keys(["net.toy_head.weight", "net.plus_head.weight"]) is plus
    assert family_of_keys(["net.plus_head.weight", "net.toy_head.weight"]) is plus
    assert family_of_keys(["net.toy_head.weight"]) is toy_family
    assert family_of_keys(["head.mlp2.1.weight", "head.gau.uv.weight"]) is FAMILIES["rtmw"]
    assert family_of_keys(["head.gau.uv.weight"]) is FAMILIES["rtmpose"]


@pytest.mark.parametrize("family", FAMILIES.values(), ids=lambda family: family.name)
def test_each_family_builds_its_backbones_recognises_them_and_keeps_their_names(family: FamilySpec) -> None:
    """Every backbone a description names builds; the network's keys carry its family's signature and no other's
    (but the one of the family it extends), and pass its renaming hook unchanged (a checkpoint of our own loads
    into the family that wrote it)."""
    for backbone in family.backbones:
        cfg = ModelConfig(family=family.name, backbone=backbone, input_size=(192, 256), num_deconv=2)
        stride = family.heatmap_stride(cfg)
        cfg.heatmap_size = (192 // stride, 256 // stride) if stride else cfg.heatmap_size
        with torch.device("meta"):  # shapes only: ViTPose-H has 630 M parameters
            network = build_network(cfg)
        state = network.state_dict()
        carried = {f.name for f in FAMILIES.values() if any(key.endswith(f.signature) for key in state)}
        assert carried == {family.name, family.extends} - {None} and family_of_keys(state) is family, backbone
        assert family.to_model_keys(state, network).keys() == state.keys()
