"""Inputs are bounded before they cost: image pixels, JSON size and depth; caches check what they hold; plausible
mistakes (a Latin-1 config, instance annotations, an output path that is a folder or a file) are one line."""

from __future__ import annotations

import json
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
import toppose.common.atomic
from hypothesis import given, settings
from hypothesis import strategies as st
from toppose.common import images
from toppose.common.config import Config, ConfigError, load_config, read_toml
from toppose.common.errors import UserError, run_cli
from toppose.common.images import ImageTooLargeError, image_size, read_image
from toppose.common.jsonio import MAX_JSON_DEPTH, JsonLimitError, nesting_depth, read_json
from toppose.detector import load_boxes
from toppose.pose import runtime
from toppose.pose.onnx_export import FINGERPRINT_KEY
from toppose.pose.results import load_results
from torch import nn

from toppose.cli import eval as eval_cli
from toppose.cli import export as export_cli
from toppose.cli import train as train_cli


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` grey pixels: the signature and the IHDR chunk, no pixel data."""
    fields = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + fields
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(fields)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def tiff_header(width: int, height: int, big_endian: bool, big_tiff: bool) -> bytes:
    """A TIFF (or BigTIFF) whose first directory holds only its ImageWidth (LONG) and ImageLength (SHORT)."""
    order = ">" if big_endian else "<"
    mark = b"MM" if big_endian else b"II"
    if big_tiff:
        head = mark + struct.pack(order + "HHHQ", 43, 8, 0, 16)
        entries = struct.pack(order + "HHQI4x", 256, 4, 1, width) + struct.pack(order + "HHQH6x", 257, 3, 1, height)
        return head + struct.pack(order + "Q", 2) + entries + bytes(8)
    head = mark + struct.pack(order + "HI", 42, 8)
    entries = struct.pack(order + "HHII", 256, 4, 1, width) + struct.pack(order + "HHIH2x", 257, 3, 1, height)
    return head + struct.pack(order + "H", 2) + entries + bytes(4)


def one_error_line(main: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run a CLI as a user would: it must fail with one ``error:`` line and no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code != 0 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


# --- image pixels ---


def test_a_huge_canvas_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(20000, 20000))
    monkeypatch.setattr(images.cv2, "imdecode", lambda *_: pytest.fail("decoded"))
    with pytest.raises(ImageTooLargeError) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message and "20000x20000" in message and "400.0 megapixels" in message
    assert "limit of 64 megapixels" in message and "TOPPOSE_MAX_IMAGE_PIXELS" in message


def test_the_pixel_limit_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "frame.jpg"
    cv2.imwrite(str(path), np.zeros((60, 100, 3), np.uint8))
    monkeypatch.setenv("TOPPOSE_MAX_IMAGE_PIXELS", "6000")
    assert read_image(path).shape == (60, 100, 3)
    monkeypatch.setenv("TOPPOSE_MAX_IMAGE_PIXELS", "5999")
    with pytest.raises(ImageTooLargeError, match=r"100x60 image \(0.0 megapixels\) is over the limit of 0.005999"):
        read_image(path)
    for bad in ("lots", "0", "-5", "1.5e6"):
        monkeypatch.setenv("TOPPOSE_MAX_IMAGE_PIXELS", bad)
        with pytest.raises(UserError, match=f"TOPPOSE_MAX_IMAGE_PIXELS: expected a whole number > 0, got '{bad}'"):
            read_image(path)


ENCODINGS = [(".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".bmp", []), (".tif", []),
             (".webp", []), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), (".ppm", []), (".pgm", [])]  # fmt: skip


@settings(max_examples=30, deadline=None)
@given(width=st.integers(1, 300), height=st.integers(1, 300), encoding=st.sampled_from(ENCODINGS))
def test_header_sizes_are_the_decoded_sizes(width: int, height: int, encoding: tuple[str, list[int]]) -> None:
    suffix, params = encoding
    pixels = np.full((height, width) if suffix == ".pgm" else (height, width, 3), 128, np.uint8)
    ok, data = cv2.imencode(suffix, pixels, params)
    assert ok and image_size(data.tobytes()) == (width, height)


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("big_tiff", [False, True])
def test_tiff_sizes_in_either_byte_order(big_endian: bool, big_tiff: bool) -> None:
    assert image_size(tiff_header(70001, 513, big_endian, big_tiff)) == (70001, 513)


def test_headers_cut_short_or_unknown_are_left_to_the_decoder(tmp_path: Path) -> None:
    assert image_size(png_header(5, 5)[:20]) is None and image_size(b"\xff\xd8\xff\xe0\x00") is None
    assert image_size(b"not an image") is None and image_size(b"") is None
    path = tmp_path / "cut.png"
    path.write_bytes(png_header(20, 20)[:20])
    with pytest.raises(UserError, match="cannot decode image"):
        read_image(path)


# --- JSON size and depth ---


def json_values(strings: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | strings
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings, inner, max_size=3))


def reference_depth(value: Any) -> int:
    """How deep lists and dicts nest in ``value``, by walking it (iteratively)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


@settings(max_examples=60, deadline=None)
@given(value=json_values(st.text(alphabet='[]{}"\\ab\n', max_size=6)), ascii_only=st.booleans())
def test_nesting_depth_ignores_brackets_in_strings(value: Any, ascii_only: bool) -> None:
    assert nesting_depth(json.dumps(value, ensure_ascii=ascii_only).encode()) == reference_depth(value)


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(0, 3 * MAX_JSON_DEPTH), kinds=st.lists(st.sampled_from("[{"), min_size=1, max_size=5))
def test_any_nesting_gives_data_or_one_line(depth: int, kinds: list[str]) -> None:
    opened = [kinds[level % len(kinds)] for level in range(depth)]
    text = "".join('{"k": ' if kind == "{" else "[" for kind in opened) + '"]}"'
    text += "".join("}" if kind == "{" else "]" for kind in reversed(opened))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "nested.json"
        path.write_text(text)
        if depth <= MAX_JSON_DEPTH:
            assert read_json(path, "results file") == json.loads(text)
        else:
            with pytest.raises(JsonLimitError, match=f"nested {depth} levels deep, more than the 64 allowed"):
                read_json(path, "results file")


def test_deeply_nested_boxes_and_results_files_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    for load in (load_boxes, load_results):
        with pytest.raises(JsonLimitError, match=f"{path}: JSON nested 100000 levels deep"):
            load(path)


def test_json_files_over_the_size_limit_are_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}] * 3))
    monkeypatch.setenv("TOPPOSE_MAX_JSON_BYTES", "100")
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read"))
    message = rf"{path}: detection results file of {path.stat().st_size} bytes is over the limit of 100 bytes"
    with pytest.raises(JsonLimitError, match=message):
        load_boxes(path)
    monkeypatch.setenv("TOPPOSE_MAX_JSON_BYTES", "2GB")
    with pytest.raises(UserError, match="TOPPOSE_MAX_JSON_BYTES: expected a whole number > 0, got '2GB'"):
        load_boxes(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'[{"name": "caf\xe9"}]', "not a results file: byte 0xe9 on line 1 is not UTF-8"),
        (b'[\n1,\n"\xff"]', "not a results file: byte 0xff on line 3 is not UTF-8"),
        (b"[" + b"9" * 5000 + b"]", "not a results file: malformed JSON"),
    ],
)
def test_undecodable_json_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as info:
        read_json(path, "results file")
    assert "\n" not in str(info.value)


# --- the ONNX Runtime cache ---


def fake_export(calls: list[str]) -> Any:
    """An ``export_onnx`` stand-in: an identity graph on the crops, with the fingerprint it is given."""

    def export(model: nn.Module, cfg: Config, fingerprint: str = "") -> bytes:
        calls.append(fingerprint)
        shape = [None, *reversed(cfg.model.input_size), 3]
        graph = onnx.helper.make_graph(
            [onnx.helper.make_node("Identity", ["crops"], ["heatmaps"])],
            "crops",
            [onnx.helper.make_tensor_value_info("crops", onnx.TensorProto.UINT8, shape)],
            [onnx.helper.make_tensor_value_info("heatmaps", onnx.TensorProto.UINT8, shape)],
        )
        proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
        proto.ir_version = 8
        onnx.helper.set_model_props(proto, {FINGERPRINT_KEY: fingerprint} if fingerprint else {})
        return proto.SerializeToString()

    return export


def test_a_cached_graph_of_other_weights_is_exported_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    calls: list[str] = []
    monkeypatch.setattr(runtime, "export_onnx", fake_export(calls))
    model, other, cfg = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 1), Config()
    key = runtime.graph_key(model, cfg)
    path = runtime.cache_path(model, cfg)
    runtime.cached_session(model, cfg, 1)
    runtime.cached_session(model, cfg, 1)  # from the cache
    assert calls == [key] and path.is_file()
    path.write_bytes(fake_export([])(other, cfg, runtime.graph_key(other, cfg)))  # another graph under its name
    session = runtime.cached_session(model, cfg, 1)
    warning = capsys.readouterr().err
    assert f"ignoring ONNX cache file {path}: not exported from these weights and setup" in warning
    assert warning.count("\n") == 1 and calls == [key, key]
    assert session.get_modelmeta().custom_metadata_map[FINGERPRINT_KEY] == key
    path.write_bytes(fake_export([])(model, cfg))  # a file of an older version: no fingerprint
    runtime.cached_session(model, cfg, 1)
    assert "not exported from these weights" in capsys.readouterr().err and calls == [key] * 3


# --- plausible mistakes: one line each ---


def test_a_latin_1_config_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "setup.toml"
    path.write_bytes(b"[crop]\n# r\xe9glage\npadding = 1.25\n")
    with pytest.raises(ConfigError, match=rf"{path}: not valid TOML: byte 0xe9 on line 2 is not UTF-8"):
        load_config(path)
    path.write_text("a = " + "[" * 5000 + "]" * 5000)
    with pytest.raises(ConfigError, match="nested too deep"):
        read_toml(path)


def instance_annotations(path: Path) -> Path:
    """What sits beside a person_keypoints file: instances_*.json (boxes and outlines, no keypoints)."""
    annotation = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 60], "area": 900.0, "iscrowd": 0,
                  "segmentation": [[1, 2, 31, 2, 31, 62]]}  # fmt: skip
    images_list = [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 96}]
    path.write_text(json.dumps({"images": images_list, "annotations": [annotation], "categories": [{"id": 1}]}))
    return path


def test_eval_given_instance_annotations_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ann = instance_annotations(tmp_path / "instances_val2017.json")
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 1, "category_id": 1, "keypoints": [10, 20, 1] * 17, "score": 0.9}]))
    err = one_error_line(eval_cli.main, ["--ann", str(ann), "--results", str(results)], capsys)
    assert f"{ann}: not a COCO person-keypoints file: annotation 0: no 'keypoints' and 'num_keypoints'" in err


def test_eval_given_keypoints_of_another_skeleton_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = tmp_path / "ann.json"
    annotation = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12.0, "iscrowd": 0,
                  "keypoints": [0, 0, 0] * 14, "num_keypoints": 0}  # fmt: skip
    ann.write_text(json.dumps({"images": [{"id": 1}], "annotations": [{}, annotation]}))
    err = one_error_line(eval_cli.main, ["--ann", str(ann), "--oracle"], capsys)
    assert "annotation 0: no 'keypoints' and 'num_keypoints'" in err
    ann.write_text(json.dumps({"images": [{"id": 1}], "annotations": [annotation]}))
    assert "annotation 0: 'keypoints' must be a list of x, y, v triplets of 17, 26 or 133 keypoints" in one_error_line(
        eval_cli.main, ["--ann", str(ann), "--oracle"], capsys
    )


def test_export_to_a_folder_or_a_read_only_one_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(export_cli, "build_pose_model", lambda *_, **__: pytest.fail("exported"))
    err = one_error_line(export_cli.main, ["-o", str(tmp_path), "--pose-weights", ""], capsys)
    assert err == f"error: --out {tmp_path} is a folder: give the ONNX file to write"

    def refuse(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied")  # as a read-only folder answers (tests may run as root)

    monkeypatch.setattr(toppose.common.atomic.tempfile, "TemporaryFile", refuse)
    err = one_error_line(export_cli.main, ["-o", str(tmp_path / "net.onnx"), "--pose-weights", ""], capsys)
    assert err == f"error: cannot write to the output folder {tmp_path}: Permission denied"


def test_train_into_a_file_is_one_line(
    synthetic_coco: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("toppose.pose.training.trainer.start_runtime", lambda *_: pytest.fail("trained"))
    config = tmp_path / "train.toml"
    config.write_text(
        f"[model]\nfamily = 'simplebaseline'\nbackbone = 'resnet18'\nweights = ''\n"
        f"[data]\ntrain_annotations = {json.dumps(str(synthetic_coco / 'annotations.json'))}\n"
        f"train_images = {json.dumps(str(synthetic_coco / 'images'))}\n"
        f"[train]\npretrained_backbone = false\n"
    )
    taken = tmp_path / "runs"
    taken.write_text("a file where the run's folder would be")
    err = one_error_line(train_cli.main, ["--config", str(config), "--output-dir", str(taken)], capsys)
    assert err == f"error: output path exists and is not a folder: {taken}"
