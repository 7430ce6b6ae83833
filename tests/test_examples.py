"""The walk-through in examples/ runs top to bottom on the tiny configuration."""

import importlib.util
from pathlib import Path

import pytest
from PIL import Image

from conftest import as_cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_walkthrough_trains_compares_and_plots(tiny_kwargs, tmp_path, one_torch_thread, capsys):
    walkthrough = load_example("walkthrough")
    curves = walkthrough.main(
        ["--timesteps", "4", "--episodes", "1", "--out", str(tmp_path), "--env-kwargs", *as_cli(tiny_kwargs)]
    )
    steps = tiny_kwargs["budget"] // tiny_kwargs["num_pools"]
    assert list(curves) == ["random", "entropy", "BatchDQN"]
    assert all(len(curve) == steps + 1 for curve in curves.values())
    assert len({curve[0] for curve in curves.values()}) == 1  # every policy starts from the same network
    assert (tmp_path / "dqn.zip").is_file()
    for picture in ("frame.png", "miou_vs_regions.png"):
        with Image.open(tmp_path / picture) as image:
            assert image.size[0] > 100 and image.size[1] > 100
    assert "test mIoU" in capsys.readouterr().out


def test_walkthrough_rejects_a_mistyped_setting(tmp_path):
    walkthrough = load_example("walkthrough")
    with pytest.raises(ValueError, match="'budget' must be int"):
        walkthrough.main(["--out", str(tmp_path), "--env-kwargs", "budget=many"])
