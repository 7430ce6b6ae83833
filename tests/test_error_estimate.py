"""benchmarks/error_estimate.py: the pick-quality measures and the regression it compares with the rules."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import as_cli, benchmark_script


@pytest.fixture(scope="module")
def script():
    with benchmark_script("error_estimate") as module:
        yield module


def test_pick_quality_scores_the_oracle_at_100_and_refuses_empty_slots(script):
    errors = np.array([[0.1, 0.6, 0.3], [0.2, 0.0, 0.9]])
    mask = np.array([[True, True, True], [True, False, True]])
    oracle = script.pick_quality(errors, mask, np.array([1, 2]))
    assert oracle["error_captured"] == pytest.approx(100.0) and oracle["oracle_pick"] == pytest.approx(100.0)
    worst = script.pick_quality(errors, mask, np.array([0, 0]))
    assert worst["error_captured"] == pytest.approx(100 * 0.3 / 1.5) and worst["oracle_pick"] == 0.0
    assert worst["random_captured"] == pytest.approx(100 * (1.0 / 3 + 0.55) / 1.5)
    with pytest.raises(ValueError, match="empty pool slot"):
        script.pick_quality(errors, mask, np.array([1, 1]))


def test_it_reads_real_episodes_and_writes_its_table(script, tiny_kwargs, one_torch_thread, tmp_path):
    out = tmp_path / "estimate"
    options = ["--episodes", "2", "--fit-episodes", "1", "--rules", "random", "margin", "--out", str(out)]
    summary = script.main(["--env-kwargs", *as_cli(tiny_kwargs), *options])
    assert set(summary["policies"]) == {"random", "margin", "ridge regression"}
    for quality in summary["policies"].values():
        assert 0.0 <= quality["error_captured"] <= 100.0 + 1e-9
    assert out.with_suffix(".md").read_text().count("| ridge regression |") == 1
    bad_options = (
        ["--episodes", "2", "--fit-episodes", "2"],
        ["--rules", "margn"],
        ["--rules", "error_oracle"],  # it reads the env, not the stored observation
        ["--env-kwargs", "budgett=3"],
    )
    for bad in bad_options:
        with pytest.raises(SystemExit):  # before any env is built
            script.main(bad)
