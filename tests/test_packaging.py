"""What pip installs: one version, the commands, the typing marker, the citation."""

import importlib
import importlib.metadata
import re
from pathlib import Path

import pytest

import segal_env

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "segal-train": "experiments.training:cli",
    "segal-evaluate": "experiments.benchmark.cli:main",
    "segal-supervised": "segal_env.supervised:cli",
    "segal-zoo": "experiments.zoo:main",
    "segal-request": "experiments.requests:main",
    "segal-merge-labels": "experiments.requests:merge_main",
    "segal-select-rule": "experiments.rule_selection:cli",
    "segal-fit-error-model": "experiments.error_model:cli",
}


def test_one_version_source():
    assert importlib.metadata.version("segal-rl") == segal_env.__version__
    citation = (REPO / "CITATION.cff").read_text()
    assert re.search(r"^version: (\S+)$", citation, re.M).group(1) == segal_env.__version__
    assert 'version = "' not in (REPO / "pyproject.toml").read_text()  # dynamic, read from segal_env


def test_console_commands_are_installed_and_answer_help(capsys):
    installed = {
        ep.name: ep.value
        for ep in importlib.metadata.entry_points(group="console_scripts")
        if ep.name.startswith("segal-")
    }
    assert installed == COMMANDS
    for name, target in COMMANDS.items():
        if name == "segal-zoo":  # its --help is the Zoo's (optional extra): tests/test_zoo.py runs it
            continue
        module, function = target.split(":")
        with pytest.raises(SystemExit) as exit_info:
            getattr(importlib.import_module(module), function)(["--help"])
        assert exit_info.value.code == 0
        assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("package", ["segal_env", "agents", "experiments"])
def test_packages_are_marked_typed(package):
    assert (Path(importlib.import_module(package).__file__).parent / "py.typed").is_file()
