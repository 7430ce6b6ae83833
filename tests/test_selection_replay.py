"""benchmarks/selection_replay.py: a stored selection replayed under the t test from its stored episodes."""

from __future__ import annotations

import json

import pytest

from conftest import benchmark_script


@pytest.fixture(scope="module")
def selection_replay():
    with benchmark_script("selection_replay") as module:
        yield module


def stored(returns: dict[str, list[float]]) -> dict:
    settings = {"seed": 1000, "min_rounds": 3, "z": 2.0}
    return {"settings": settings, "state": {"returns": returns}, "chosen": "margin"}


def test_a_replay_drops_at_the_looks_and_stops_where_episodes_are_missing(selection_replay):
    # 0.5 behind: 2.6 SE after 6 rounds (2 SE would drop it; the t test's bar there is 2.9), 4.2 after 12: dropped
    noise_ = [0.4, -0.3, 0.2, -0.6, 0.5, 0.1, -0.2, 0.3, -0.4, 0.0, 0.6, -0.5]
    margin = [40.0] * 12
    close = [40.0 - 0.5 + noise for noise in noise_]
    full = selection_replay.replay(stored({"margin": margin, "model": close}), episodes=24)
    assert full["replayed"] and full["looks"] == [3, 6, 12] and full["kept"] == ["margin"]
    early = selection_replay.replay(stored({"margin": margin, "model": close[:3]}), episodes=24)
    assert not early["replayed"] and early["why"] == "episode 3 of model was not stored"


def test_the_command_reads_file_and_episodes(selection_replay, tmp_path, capsys):
    path = tmp_path / "selection.json"
    path.write_text(json.dumps(stored({"margin": [40.0, 41.0, 40.5], "entropy": [38.0, 39.1, 38.4]})))
    (result,) = selection_replay.main([f"{path}:6"])
    assert (
        result["kept"] == ["margin"] and "kept margin; leader margin" in capsys.readouterr().out
    )  # 2.0 behind, sd 0.1
    with pytest.raises(SystemExit):
        selection_replay.main([str(path)])
    assert "give FILE:EPISODES" in capsys.readouterr().err
