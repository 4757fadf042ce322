"""Data flows one way: each top-level package imports only the packages of the steps before it.

frames -> person boxes (``detector``) and crops -> keypoints (``pose``), each on its own -> tracks
(``tracking``) -> the composition of the steps: per-frame pipeline, frame loop, video I/O, Python API
(``toppose``) -> evaluation and benchmarks (``eval``). ``common`` serves all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "detector", "pose", "tracking", "toppose", "eval")
ALLOWED = {
    "common": {"common"},
    "detector": {"common", "detector"},
    "pose": {"common", "pose"},
    "tracking": {"common", "pose", "tracking"},
    "toppose": {"common", "detector", "pose", "tracking", "toppose"},
    "eval": set(PACKAGES),
}
# Training validates on the boxes of a COCO detection file, as eval.coco --boxes does.
EXCEPTIONS = {("pose/training/validation.py", "detector")}


def imported_packages(path: Path) -> set[str]:
    """The project packages a module imports (anywhere in it)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_earlier_steps(package: str) -> None:
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules
    wrong = [
        f"{path.relative_to(ROOT).as_posix()} imports {other}"
        for path in modules
        for other in sorted(imported_packages(path) - ALLOWED[package])
        if (path.relative_to(ROOT).as_posix(), other) not in EXCEPTIONS
    ]
    assert not wrong, wrong


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nimport pose.geometry\nfrom detector.boxes_file import load_boxes\nfrom . import x\n")
    assert imported_packages(module) == {"pose", "detector"}
