"""Data flows one way: each room of the package imports only the rooms of the steps before it.

frames -> person boxes (``toppose.detector``) and crops -> keypoints (``toppose.pose``), each on its own ->
tracks (``toppose.tracking``) -> the composition of the steps: per-frame pipeline, frame loop, sources, video
I/O, Python API (``toppose``) -> evaluation (``toppose.eval``) -> the command line (``toppose.cli``).
``toppose.common`` serves all. Outside the package, ``benchmarks/`` may use everything and nothing imports it.

The checkout keeps the design's top-level folders; the install maps each to a subpackage of ``toppose``
(pyproject.toml's ``package-dir``), so every import names ``toppose.``: a bare ``import pose`` works in a
checkout and breaks in a wheel.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"common": "common", "detector": "detector", "pose": "pose", "tracking": "tracking", "eval": "eval"}
ROOMS = ("common", "detector", "pose", "tracking", "toppose", "eval", "cli", "configs")
ALLOWED = {
    "common": {"common"},
    "configs": set(),
    "detector": {"common", "detector"},
    "pose": {"common", "pose"},
    "tracking": {"common", "pose", "tracking"},
    "toppose": {"common", "detector", "pose", "tracking", "toppose"},
    "eval": {"common", "detector", "pose", "tracking", "toppose", "eval"},
    "cli": set(ROOMS),
}
# Training validates on the boxes of a COCO detection file, as eval.coco --boxes does.
EXCEPTIONS = {("pose/training/validation.py", "detector")}


def room_of_import(module: str) -> str | None:
    """The room a ``toppose...`` module name belongs to; ``None`` for other packages."""
    parts = module.split(".")
    if parts[0] != "toppose":
        return None
    if len(parts) > 1 and parts[1] in (*FOLDERS, "cli", "configs"):
        return parts[1]
    return "toppose"


def room_of_file(path: Path) -> str:
    relative = path.relative_to(ROOT).parts
    if relative[0] == "toppose" and len(relative) > 2 and relative[1] == "cli":
        return "cli"
    return relative[0]


def _is_main_guard(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def imported_modules(path: Path) -> set[str]:
    """The absolute module names a module imports, anywhere in it except an ``if __name__ == "__main__":`` block
    (a ``python -m`` alias of a ``toppose`` subcommand may call the command line from there)."""
    tree = ast.parse(path.read_text(), str(path))
    guarded = {id(n) for guard in ast.walk(tree) if _is_main_guard(guard) for n in ast.walk(guard)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def package_modules() -> list[Path]:
    modules = [p for folder in (*FOLDERS, "toppose", "configs") for p in sorted((ROOT / folder).rglob("*.py"))]
    assert modules
    return [p for p in modules if p.name != "__main__.py"]  # python -m aliases: one call of the command line


@pytest.mark.parametrize("room", ROOMS)
def test_rooms_import_only_earlier_steps(room: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT).as_posix()} imports {module}"
        for path in package_modules()
        if room_of_file(path) == room
        for module in sorted(imported_modules(path))
        if (other := room_of_import(module)) is not None and other not in ALLOWED[room]
        if (path.relative_to(ROOT).as_posix(), other) not in EXCEPTIONS
    ]
    assert not wrong, wrong


def test_imports_name_the_installed_package() -> None:
    """``from pose.x import y`` finds the checkout's folder, never the installed package: always ``toppose.pose``."""
    bare = set(FOLDERS) | {"benchmarks"}
    wrong = [
        f"{path.relative_to(ROOT).as_posix()} imports {module}"
        for path in [
            *package_modules(),
            *sorted((ROOT / "benchmarks").rglob("*.py")),
            *sorted((ROOT / "tests").rglob("*.py")),
        ]
        for module in sorted(imported_modules(path))
        if module.split(".")[0] in bare - ({"benchmarks"} if path.parts[-2] in ("benchmarks", "tests") else set())
    ]
    assert not wrong, wrong


def test_nothing_in_the_package_imports_the_benchmarks() -> None:
    wrong = [p.relative_to(ROOT).as_posix() for p in package_modules() if any(
        m.split(".")[0] == "benchmarks" for m in imported_modules(p))]  # fmt: skip
    assert not wrong


def test_every_package_of_the_checkout_is_installed() -> None:
    """pyproject.toml lists each folder with an ``__init__.py`` under its installed name, and maps the roots."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = setuptools["package-dir"]
    assert mapping == {
        "toppose": "toppose",
        **{f"toppose.{k}": v for k, v in {**FOLDERS, "configs": "configs"}.items()},
    }
    found = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *relative)))
    assert set(setuptools["packages"]) == found


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os\nimport toppose.pose.geometry\nfrom toppose.detector.boxes_file import load_boxes\nfrom . import x\n"
        "if __name__ == '__main__':\n    from toppose.cli import main\n"
    )
    assert imported_modules(module) == {"os", "toppose.pose.geometry", "toppose.detector.boxes_file"}
    assert [room_of_import(m) for m in ("toppose.pose.geometry", "toppose.api", "toppose", "numpy")] == [
        "pose", "toppose", "toppose", None]  # fmt: skip
