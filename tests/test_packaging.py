"""The installable product: the wheel carries the bundled weights, and the library keeps its layers apart."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "sr_core"


def test_bundled_weights_resolve_to_the_checkout_models_folder():
    from sr_core.baselines.pixel import DEFAULT_MODEL
    from sr_core.model.checkpoint import default_model_path
    from sr_core.paths import BUNDLED_DIR, bundled_models_dir

    assert not BUNDLED_DIR.exists(), "sr_core/_bundled is made by the wheel build only; never in a checkout"
    assert bundled_models_dir() == REPO / "models"
    assert default_model_path() == REPO / "models" / "sr-small.pt" and default_model_path().is_file()
    assert DEFAULT_MODEL == REPO / "models" / "pixel-baseline.npz" and DEFAULT_MODEL.is_file()


@pytest.mark.slow
def test_wheel_ships_the_bundled_weights_as_package_data(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(PACKAGE, src / "sr_core", ignore=shutil.ignore_patterns("__pycache__", "_bundled"))
    shutil.copytree(REPO / "models", src / "models")
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
                          "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("sr_core-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        entry = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    for f in ("sr-small.pt", "pixel-baseline.npz", "MODEL_CARD.md", "PIXEL_BASELINE.md"):
        assert f"sr_core/_bundled/{f}" in names
    assert "sr_core/assets/slovenia.geojson" in names
    assert not any(n.startswith(("tests/", "models/", "tools/")) for n in names)
    assert "sr-core = sr_core.cli:main" in entry
    for extra in ("app", "dask", "dev"):
        assert f"Provides-Extra: {extra}" in meta
    runtime = [line for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not any(tool in line for line in runtime for tool in ("pytest", "selenium", "hypothesis", "ruff"))


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    pkg = parts if parts[-1] == "__init__" else parts[:-1]
    pkg = [p for p in pkg if p != "__init__"]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def test_library_never_imports_the_cli_the_app_or_ui():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "cli") in path.parents or path == PACKAGE / "__main__.py":  # __main__ runs the CLI
            continue
        bad = sorted(m for m in _imports(path) if m.split(".")[0] in {"app", "ui", "pages"} or m.startswith("sr_core.cli"))
        if bad:
            offenders.append(f"{path.relative_to(REPO)}: {', '.join(bad)}")
    assert not offenders, "library modules import the CLI / app:\n" + "\n".join(offenders)


def test_library_never_reads_the_shared_folder_beside_the_checkout():
    # real fixtures come only through $SR_SHARED_DATA or an argument; challenge facts from the repository's own docs
    offenders = []
    for p in sorted(PACKAGE.rglob("*.py")):
        text = p.read_text(encoding="utf-8")
        if '"shared"' in text or "REPO_DIR.parent" in text or "CHALLENGE.md" in text.replace("CHALLENGE_FACTS.md", ""):
            offenders.append(str(p.relative_to(REPO)))
    assert not offenders
