"""Named setups (``--setup``) and the crowd benchmark on a tiny clip (no timed assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from toppose.common.errors import run_cli
from toppose.pose.registry import REGISTRY

from benchmarks import crowd as crowd_benchmark
from toppose.cli import run
from toppose.cli.options import SETUPS, config_from_args, setup_path


def parse(*argv: str) -> object:
    return config_from_args(run.build_parser().parse_args(["in.mp4", "-o", "out", *argv]))


@pytest.mark.parametrize("name", SETUPS)
def test_named_setups_load_with_their_weights_setup(name: str) -> None:
    cfg = parse("--setup", name)
    assert setup_path(name).is_file()
    entry = REGISTRY[cfg.model.weights]
    assert (cfg.model.family, cfg.model.backbone) == (entry.family, entry.backbone)
    assert entry.published_ap >= 70  # every named setup's network reports COCO val AP >= 70


def test_setup_choices_and_det_every() -> None:
    fast = parse("--setup", "fast")
    assert (fast.video.det_every, fast.inference.flip_test) == (5, False)
    assert parse("--setup", "fast", "--det-every", "2").video.det_every == 2
    assert parse().video.det_every == 1  # the default setup detects on every frame
    assert parse("--setup", "accurate").inference.flip_test


def test_setup_and_config_together_is_one_error(capsys: pytest.CaptureFixture[str]) -> None:
    def main(argv: list[str] | None) -> int:
        config_from_args(run.build_parser().parse_args(argv))
        return 0

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, ["in.mp4", "-o", "out", "--setup", "fast", "--config", str(setup_path("balanced"))])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("error:") == 1 and "--setup and --config" in err


def test_crowd_benchmark_runs_a_setup_on_a_tiny_clip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figures.json"
    assert crowd_benchmark.main(["--frames", "3", "--setups", "fast", "--bf16", "--no-yolo", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    fast = figures["setups"]["fast"]
    assert figures["frames"] == 3 and fast["fps"] > 0 and fast["peak_rss_mb"] > 0
    assert {"pose", "detect", "track"} <= set(fast["stage_seconds"])
    assert "ratio_to_yolo" not in fast and figures["setups"]["fast bf16"]["fps"] > 0
    assert "frames/s" in capsys.readouterr().out


def test_crowd_benchmark_unknown_setup_is_one_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(crowd_benchmark.main, ["--frames", "2", "--setups", "nonesuch", "--no-yolo"])
    err = capsys.readouterr().err
    assert exit_info.value.code != 0 and err.count("error:") == 1 and "no setup 'nonesuch'" in err


def test_crowd_clip_has_a_crowd(tmp_path: Path) -> None:
    truth = crowd_benchmark.write_crowd_clip(tmp_path / "crowd.mp4", 4)
    assert len(truth) == 4 and all(len(d.boxes) >= 5 for d in truth.values())


def test_yolo_is_timed_on_every_frame_of_the_clip(tmp_path: Path) -> None:
    """The warm-up reads its own source: the timed pass covers the whole clip, not what the warm-up left."""
    clip = tmp_path / "crowd.mp4"
    crowd_benchmark.write_crowd_clip(clip, crowd_benchmark.WARM_UP_FRAMES + 3)
    calls: list[tuple[int, ...]] = []
    figures = crowd_benchmark.run_yolo(lambda image, verbose: calls.append(image.shape), clip)
    assert figures.frames == crowd_benchmark.WARM_UP_FRAMES + 3
    assert len(calls) == crowd_benchmark.WARM_UP_FRAMES + figures.frames
    assert figures.fps == pytest.approx(figures.frames / figures.elapsed)
