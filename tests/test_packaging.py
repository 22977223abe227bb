"""Install shape: the deploy extra stays free of torch; the code stays ruff-clean."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_deploy_extra_does_not_install_torch(tmp_path):
    # --ignore-installed resolves as a fresh virtual environment would.
    report = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), f"{ROOT}[deploy]"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"onnxruntime", "pyserial", "numpy", "pydantic", "mujoco"} <= names
    assert not names & {"torch", "gymnasium", "wandb"}, names


def test_source_is_ruff_clean():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


def test_every_subpackage_and_data_file_is_installed():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "velora_robot").rglob("__init__.py")}
    assert found | {"velora_robot.scenes"} == set(config["packages"])
    assert config["package-dir"] == {"velora_robot.scenes": "sim"}
    assert list((ROOT / "sim").glob("*.xml")), "sim/ holds the project's MJCF scenes"
