"""A normal install works: the wheel built from the checkout, installed into a fresh environment, used from
another folder (the console command, a run on a generated image with random weights, the Python API).

The fresh environment reuses this one's installed dependencies (torch and the rest) through a plain path entry,
so nothing is downloaded; that entry does not run this environment's ``.pth`` files, so the checkout's editable
install cannot stand in for a file the wheel lacks.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def sh(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel, and a fresh virtual environment with only it installed (dependencies reached by path)."""
    work = tmp_path_factory.mktemp("install")
    built = sh(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "--no-build-isolation", "-w", work / "dist",
               "-q", cwd=work)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (work / "dist").glob("toppose-*.whl")
    venv = work / "venv"
    made = sh(sys.executable, "-m", "venv", venv, cwd=work)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = Path(sh(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=work).stdout.strip())
    dependencies = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()}
    (purelib / "test_dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n")
    done = sh(python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel, cwd=work)
    assert done.returncode == 0, done.stderr
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return {"wheel": wheel, "venv": venv, "python": python, "purelib": purelib, "cwd": elsewhere}


def test_the_wheel_holds_one_package_with_its_configs(installed: dict[str, Path]) -> None:
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"toppose"}
    for setup in ("fast", "balanced", "accurate"):
        assert f"toppose/configs/setup_{setup}.toml" in names
    assert "toppose/configs/rtmpose_m_256x192.toml" in names
    assert not any(
        name.startswith(("toppose/benchmarks", "tests/", "benchmarks/")) or name == "run.py" for name in names
    )
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "toppose = toppose.cli:main" in zipfile.ZipFile(installed["wheel"]).read(entry_points).decode()


def test_the_installed_command_runs_from_another_folder(installed: dict[str, Path]) -> None:
    cwd, toppose = installed["cwd"], installed["venv"] / "bin" / "toppose"
    where = sh(installed["python"], "-c", "import toppose.common.config as c; print(c.__file__, c.CONFIG_DIR)", cwd=cwd)
    assert where.returncode == 0, where.stderr
    module, configs = where.stdout.split()
    assert Path(module).is_relative_to(installed["purelib"]) and Path(configs).is_relative_to(installed["purelib"])
    helped = sh(toppose, "--help", cwd=cwd)
    assert helped.returncode == 0 and "run " in helped.stdout and "demo " in helped.stdout
    image = np.full((240, 320, 3), 90, np.uint8)
    cv2.rectangle(image, (100, 40), (180, 220), (200, 180, 160), -1)
    cv2.imwrite(str(cwd / "person.jpg"), image)
    (cwd / "boxes.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [90, 30, 100, 200],
                                                 "score": 0.9}]))  # fmt: skip
    for setup in ("fast", "balanced", "accurate"):
        ran = sh(toppose, "run", "person.jpg", "-o", f"out_{setup}", "--setup", setup, "--pose-weights", "",
                 "--boxes", "boxes.json", cwd=cwd)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        (entry,) = json.loads((cwd / f"out_{setup}" / "results.json").read_text())
        assert entry["file_name"] == "person.jpg" and len(entry["keypoints"]) == 51
        assert (cwd / f"out_{setup}" / "images" / "person.jpg").is_file()


def test_the_installed_python_api(installed: dict[str, Path]) -> None:
    script = (
        "import numpy as np\n"
        "from toppose import PoseEstimator\n"
        "from toppose.common.errors import MissingWeightsError\n"
        "from toppose.common.config import load_config\n"
        "assert load_config('configs/hrnet_w32_udp_256x192.toml').model.family == 'hrnet'  # the packaged one\n"
        "estimator = PoseEstimator('fast', weights='', pretrained_detector=False)\n"
        "people = estimator(np.zeros((240, 320, 3), np.uint8), boxes=np.array([[90.0, 30, 100, 200]]))\n"
        "print(len(people), people[0].keypoints.shape)\n"
        "try:\n"
        "    PoseEstimator('fast', weights='')\n"
        "    print('pretrained detector cached')\n"
        "except MissingWeightsError as err:\n"
        "    assert '\\n' not in str(err)\n"
        "    print('detector weights: one line')\n"
    )
    env = {**os.environ, "TORCH_HOME": str(installed["cwd"] / "torch_home")}  # an empty cache: offline as CI
    ran = sh(installed["python"], "-c", script, cwd=installed["cwd"], env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["1 (17, 3)", "detector weights: one line"]
