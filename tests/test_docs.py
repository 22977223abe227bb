"""The docs site builds strictly, every example runs, and the README stays a front page."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_the_docs_site_builds_with_strict_checks(tmp_path):
    if not (BIN / "mkdocs").exists():
        pytest.skip("mkdocs is not installed (the dev extra)")
    out = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "-q", "-d",
                          str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert "Train for <code>total_timesteps</code>" in reference  # docstrings made it in
    started = (tmp_path / "site" / "getting-started" / "index.html").read_text()
    assert "LaggedJoints" in started  # the example files are included, not described


def test_the_custom_backend_example_runs_from_its_launch_file():
    out = subprocess.run([str(BIN / "velora-robot"), "run", "examples/one_joint_custom.yaml",
                          "--duration", "1", "--no-status"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "examples")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "hardware custom_backend:LaggedJoints" in out.stdout
    assert "final mode policy" in out.stdout


def test_every_example_is_run_by_a_test():
    tests = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    for example in sorted((ROOT / "examples").iterdir()):
        assert example.name in tests or f"{example.stem}:" in tests, \
            f"examples/{example.name} is run by no test"


def test_the_readme_is_a_front_page_with_the_two_quick_start_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    quick = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    for page in re.findall(r"`(docs/[\w.-]+\.md)`", readme):
        assert (ROOT / page).is_file(), page


@pytest.mark.parametrize("script, args, expect", [
    ("train_own_env.py", ["2000"], "the point went from"),
    ("run_on_hardware.py", [], "MujocoHardware: joint at +0.4"),
    ("inspect_wiring.py", [], "fl_hip: motor neuron 0 <-"),
])
def test_the_python_examples_run(tmp_path, script, args, expect):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert expect in out.stdout
