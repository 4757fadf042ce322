"""Config files: every shipped config loads; unknown keys and bad values are one clear error (exit 2) naming the
source, the section and the key, the same for TOML files, command-line flags and ``--set``."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toppose.common.config import (
    CONFIG_DIR,
    DETECTOR_NAMES,
    PRECISION_NAMES,
    Config,
    config_from_dict,
    load_config,
    override,
)
from toppose.common.errors import ConfigError, run_cli
from toppose.detector import ARCHITECTURES
from toppose.pose.precision import AUTOCAST_DTYPES
from toppose.pose.training.config import TrainingConfig

from toppose.cli import run
from toppose.cli.options import config_from_args
from toppose.cli.train import apply_overrides


def test_default_config_loads() -> None:
    cfg = load_config()
    assert (cfg.model.family, cfg.model.backbone, cfg.codec.type) == ("rtmpose", "cspnext_m", "simcc")
    assert cfg.model.input_size == (192, 256)
    assert cfg.crop.padding == 1.25


@pytest.mark.parametrize(
    "path", sorted(p for p in CONFIG_DIR.glob("*.toml") if not p.name.startswith("train_")), ids=lambda p: p.name
)
def test_every_model_config_loads(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    width, height = cfg.model.input_size
    hm_width, hm_height = cfg.model.heatmap_size
    assert width * hm_height == height * hm_width, "heatmap must keep the input's aspect ratio"


@pytest.mark.parametrize("cls", [Config, TrainingConfig])
def test_defaults_pass_their_own_checks(cls: type) -> None:
    assert config_from_dict(dataclasses.asdict(cls()), cls) == cls()


def test_choices_match_what_the_code_implements() -> None:
    assert tuple(ARCHITECTURES) == DETECTOR_NAMES
    assert (*AUTOCAST_DTYPES, "auto") == PRECISION_NAMES


def test_unknown_key_and_section_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nbackbone = 'resnet18'\nbakcbone = 'x'\n")
    with pytest.raises(ConfigError, match=r"bad\.toml \[model\]: unknown key 'bakcbone'"):
        load_config(path)
    path.write_text("[modle]\nbackbone = 'resnet18'\n")
    with pytest.raises(ConfigError, match="unknown section 'modle'"):
        load_config(path)
    path.write_text("model = 3\n")
    with pytest.raises(ConfigError, match=r"\[model\]: expected a table"):
        load_config(path)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[inference\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("section", "line", "expected"),
    [
        ("codec", "decode = 'magic'", "[codec] decode: expected one of 'dark', 'argmax', got 'magic'"),
        ("crop", "padding = 'big'", "[crop] padding: expected a number in (0, 10], got 'big'"),
        ("crop", "padding = 0", "[crop] padding: expected a number in (0, 10], got 0"),
        ("crop", "padding = -1", "[crop] padding: expected a number in (0, 10], got -1"),
        ("codec", "sigma = 'big'", "[codec] sigma: expected a number in (0, 100], got 'big'"),
        ("codec", "sigma = nan", "[codec] sigma: expected a number in (0, 100], got nan"),
        ("codec", "blur_kernel = 4", "[codec] blur_kernel: expected an odd integer >= 1, got 4"),
        ("inference", "batch_size = 0", "[inference] batch_size: expected an integer >= 1, got 0"),
        ("inference", "batch_size = 'eight'", "[inference] batch_size: expected an integer >= 1, got 'eight'"),
        ("inference", "batch_size = 2.5", "[inference] batch_size: expected an integer >= 1, got 2.5"),
        ("inference", "flip_test = 1", "[inference] flip_test: expected true or false, got 1"),
        ("inference", "device = 'gpu'", "[inference] device: expected cpu, cuda or cuda:N, got 'gpu'"),
        (
            "inference",
            "keypoint_score_threshold = 'high'",
            "[inference] keypoint_score_threshold: expected a number in [0, 1], got 'high'",
        ),
        ("detector", "score_threshold = 'x'", "[detector] score_threshold: expected a number in [0, 1], got 'x'"),
        ("model", "input_size = [0, 256]", "[model] input_size: expected 2 integers >= 1, got [0, 256]"),
        ("model", "input_size = [192]", "[model] input_size: expected 2 integers >= 1, got [192]"),
        ("model", "backbone = 'vgg'", "[model] backbone: expected one of 'resnet18'"),
    ],
)
def test_bad_values_name_file_section_and_key(tmp_path: Path, section: str, line: str, expected: str) -> None:
    path = tmp_path / "x.toml"
    path.write_text(f"[{section}]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path} {expected}")
    assert info.value.exit_code == 2


def test_training_values_are_checked_on_reading(tmp_path: Path) -> None:
    path = tmp_path / "train.toml"
    for line, expected in [
        ("[train]\nbatch_size = 0", "[train] batch_size: expected an integer >= 1, got 0"),
        ("[train]\nschedule = 'linear'", "[train] schedule: expected one of 'step', 'cosine', got 'linear'"),
        ("[train]\nlr_steps = [10, -1]", "[train] lr_steps: expected a list of integers >= 0, got [10, -1]"),
        ("[train]\ndevice = 'tpu'", "[train] device: expected auto, cpu, cuda or cuda:N, got 'tpu'"),
        ("[augment]\nscale_factor = 1.0", "[augment] scale_factor: expected a number in [0, 1), got 1.0"),
        ("[val]\nevery = 0", "[val] every: expected an integer >= 1, got 0"),
    ]:
        path.write_text(line + "\n")
        with pytest.raises(ConfigError) as info:
            load_config(path, TrainingConfig)
        assert str(info.value) == f"{path} {expected}"


def test_override_sets_checked_fields() -> None:
    cfg = Config()
    override(cfg, "inference.batch_size", 4)
    override(cfg, "crop.padding", 1)
    override(cfg, "inference.device", None)
    assert cfg.inference.batch_size == 4
    assert cfg.crop.padding == 1.0 and isinstance(cfg.crop.padding, float)
    assert cfg.inference.device == "cpu"
    with pytest.raises(ConfigError, match=r"--nope \[inference\]: unknown key 'nope'"):
        override(cfg, "inference.nope", 1, "--nope")
    with pytest.raises(ConfigError, match="unknown config section 'nowhere'"):
        override(cfg, "nowhere.x", 1)
    with pytest.raises(ConfigError, match=r"--padding \[crop\] padding: expected a number in \(0, 10\], got -1.0"):
        override(cfg, "crop.padding", -1.0, "--padding")
    assert cfg.crop.padding == 1.0


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(run.main, argv)
    return exit_info.value.code, capsys.readouterr().err


THRESHOLD = "--det-threshold [detector] score_threshold: expected a number in [0, 1],"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--det-threshold", "nan"], f"{THRESHOLD} got nan"),
        (["--det-threshold", "1.5"], f"{THRESHOLD} got 1.5"),
        (["--padding", "0"], "--padding [crop] padding: expected a number in (0, 10], got 0.0"),
        (["--sigma", "inf"], "--sigma [codec] sigma: expected a number in (0, 100], got inf"),
        (["--device", "gpu"], "--device [inference] device: expected cpu, cuda or cuda:N, got 'gpu'"),
    ],
)
def test_bad_flags_are_one_error_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    code, err = _run_cli([str(tmp_path), "-o", str(tmp_path / "out"), *flags], capsys)
    assert (code, err) == (2, f"error: {expected}\n")
    assert not (tmp_path / "out").exists()


def test_bad_toml_value_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "x.toml"
    config.write_text("[inference]\nkeypoint_score_threshold = 'high'\n")
    code, err = _run_cli([str(tmp_path), "-o", str(tmp_path / "out"), "--config", str(config)], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {config} [inference] keypoint_score_threshold: expected a number in [0, 1]")


# Property-based: any value, of any TOML type, for any field loads as a value its check accepts or is one
# ConfigError naming the field; nothing else escapes.

FIELDS = [
    (section.name, f.name)
    for section in dataclasses.fields(TrainingConfig)
    for f in dataclasses.fields(section.default_factory())  # type: ignore[misc]
]
SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
    st.sampled_from(["dark", "argmax", "cpu", "cuda:0", "auto", "adam", "cosine", "resnet18", "fp16"]),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS.filter(lambda v: not isinstance(v, str)), max_size=3))


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=VALUES)
def test_any_value_loads_checked_or_is_one_config_error(tmp_path: Path, field: tuple[str, str], value: Any) -> None:
    section, key = field
    path = tmp_path / "any.toml"
    path.write_text(f"[{section}]\n{key} = {_toml(value)}\n", encoding="utf-8")
    try:
        cfg = load_config(path, TrainingConfig)
    except ConfigError as err:
        assert str(err).startswith(f"{path} [{section}] {key}: expected ") and "\n" not in str(err)
        return
    loaded = getattr(getattr(cfg, section), key)
    for number in loaded if isinstance(loaded, tuple) else (loaded,):
        assert not isinstance(number, float) or math.isfinite(number)
    # The loaded value passes the check again, from a file or as an override.
    override(cfg, f"{section}.{key}", loaded)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--det-threshold", "--sigma", "--padding"]), value=st.floats() | st.text(max_size=8))
def test_any_numeric_flag_value_parses_or_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: float | str
) -> None:
    text = str(value)

    def main(argv: list[str] | None) -> int:
        config_from_args(run.build_parser().parse_args(argv))
        return 0

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [str(tmp_path), "-o", str(tmp_path / "out"), f"{flag}={text}"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert exit_info.value.code in (0, 2)
    assert (exit_info.value.code == 0) == (err == "")


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(FIELDS), text=st.one_of(st.text(max_size=10), VALUES.map(_toml)))
def test_any_set_assignment_is_checked_like_a_file(field: tuple[str, str], text: str) -> None:
    section, key = field
    cfg = TrainingConfig()
    try:
        apply_overrides(cfg, [f"{section}.{key}={text}"])
    except ConfigError as err:
        assert str(err).startswith(f"--set {section}.{key} [{section}] {key}: expected ") and "\n" not in str(err)
        return
    value = getattr(getattr(cfg, section), key)
    assert config_from_dict({section: {key: value}}, TrainingConfig) is not None  # what was set passes the check


def test_set_errors_stay_on_one_line() -> None:
    for assignment in ["train.l\nr=1", "tra\nin.lr=1", "train.lr=\n'x'"]:
        with pytest.raises(ConfigError) as info:
            apply_overrides(TrainingConfig(), [assignment])
        assert "\n" not in str(info.value)


def test_a_fresh_process_checks_a_config_before_importing_any_family(tmp_path: Path) -> None:
    """The families register themselves when their module is imported; reading a config first imports it."""
    code = (
        "from toppose.common.config import load_config\n"
        "print(load_config('configs/vitpose_b_256x192.toml').model.family)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "vitpose", done.stderr
