"""Config files: every shipped config loads; unknown keys and bad types are one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import CONFIG_DIR, Config, load_config, override
from common.errors import UserError


def test_default_config_loads() -> None:
    cfg = load_config()
    assert cfg.model.backbone == "resnet50"
    assert cfg.model.input_size == (192, 256)
    assert cfg.crop.padding == 1.25


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("simplebaseline_*.toml")), ids=lambda p: p.name)
def test_every_model_config_loads(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    width, height = cfg.model.input_size
    hm_width, hm_height = cfg.model.heatmap_size
    assert width * hm_height == height * hm_width, "heatmap must keep the input's aspect ratio"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nbackbone = 'resnet18'\nbakcbone = 'x'\n")
    with pytest.raises(UserError, match="unknown key 'bakcbone'"):
        load_config(path)


def test_unknown_section_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[modle]\nbackbone = 'resnet18'\n")
    with pytest.raises(UserError, match="unknown key 'modle'"):
        load_config(path)


def test_wrong_type_and_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[inference]\nbatch_size = 'eight'\n")
    with pytest.raises(UserError, match="inference.batch_size"):
        load_config(path)
    path.write_text("[inference\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_override_sets_typed_fields() -> None:
    cfg = Config()
    override(cfg, "inference.batch_size", 4)
    override(cfg, "crop.padding", 1)
    override(cfg, "inference.device", None)
    assert cfg.inference.batch_size == 4
    assert cfg.crop.padding == 1.0 and isinstance(cfg.crop.padding, float)
    assert cfg.inference.device == "cpu"
    with pytest.raises(UserError, match="unknown config field"):
        override(cfg, "inference.nope", 1)
