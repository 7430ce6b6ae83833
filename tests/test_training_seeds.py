"""benchmarks/training_seeds.py: a learned policy's training seeds against rules, paired by test seed."""

from __future__ import annotations

import json

import pytest

from conftest import benchmark_script, fake_record


@pytest.fixture(scope="module")
def training_seeds():
    with benchmark_script("training_seeds") as module:
        yield module


def write_runs(folder, records):
    (folder / "runs").mkdir(parents=True)
    for record in records:
        (folder / "runs" / f"{record['run_id']}.json").write_text(json.dumps(record))


def test_the_agents_mean_over_training_seeds_and_both_ses_match_hand_computed_values(training_seeds, tmp_path):
    rule_px, agent_px = [[90, 10], [180, 20], [270, 30]], [[60, 40], [120, 80], [180, 120]]
    # test mIoU per test seed at budgets 10, 20, 30: dqn_s0 - margin is +1 / +3 points on test seeds 0 / 1, dqn_s1's +2 / +4
    records = [
        fake_record("margin", "margin", 0, [0.30, 0.40, 0.50], rule_px),
        fake_record("margin", "margin", 1, [0.32, 0.42, 0.52], rule_px),
        fake_record("dqn_s0", "/m/s0.zip", 0, [0.31, 0.41, 0.51], agent_px),
        fake_record("dqn_s0", "/m/s0.zip", 1, [0.35, 0.45, 0.55], agent_px),
        fake_record("dqn_s1", "/m/s1.zip", 0, [0.32, 0.42, 0.52], agent_px),
        fake_record("dqn_s1", "/m/s1.zip", 1, [0.36, 0.46, 0.56], agent_px),
        fake_record("random", "random", 0, [0.20, 0.20, 0.20], rule_px),  # ignored: neither agent nor rule
    ]
    write_runs(tmp_path / "bench", records)
    out = training_seeds.main([str(tmp_path / "bench"), "--agents", "dqn_s", "--against", "margin"])
    assert out["agents"] == ["dqn_s0", "dqn_s1"] and out["test_seeds"] == [0, 1] and out["budgets"] == [10, 20, 30]
    row = out["against"]["margin"]["30"]
    assert row["per_agent"]["dqn_s0"]["mean"] == pytest.approx(2.0) and row["per_agent"]["dqn_s1"][
        "mean"
    ] == pytest.approx(3.0)
    assert row["mean"] == pytest.approx(2.5)
    assert row["se_training_seeds"] == pytest.approx(0.5)  # sd of (2, 3) / sqrt(2)
    assert row["se_pooled"] == pytest.approx(1.0)  # the training-seed means differ by +1.5 and +3.5: sd sqrt(2)
    share = out["against"]["margin"]["rare_share"]  # pole is rare: 10% of the rule's labels, 40% of the agents'
    assert share["rule"]["mean"] == pytest.approx(0.1) and share["difference"]["mean"] == pytest.approx(0.3)
    assert json.loads((tmp_path / "bench" / "training_seeds.json").read_text())["against"] == json.loads(
        json.dumps(out["against"])
    )
    assert "| **mean** | **+2.50** (0.50; 1.00)" in (tmp_path / "bench" / "training_seeds.md").read_text()


def test_one_training_seed_reports_its_pooled_se_and_no_se_over_training_seeds(training_seeds, tmp_path):
    records = [
        fake_record("margin", "margin", 0, [0.30, 0.40, 0.50], [[9, 1]] * 3),
        fake_record("margin", "margin", 1, [0.32, 0.42, 0.52], [[9, 1]] * 3),
        fake_record("dqn_s0", "/m/s0.zip", 0, [0.31, 0.41, 0.51], [[8, 2]] * 3),
        fake_record("dqn_s0", "/m/s0.zip", 1, [0.35, 0.45, 0.55], [[8, 2]] * 3),
    ]
    write_runs(tmp_path / "bench", records)
    out = training_seeds.main([str(tmp_path / "bench"), "--agents", "dqn_s", "--against", "margin"])
    row = out["against"]["margin"]["30"]
    assert row["mean"] == pytest.approx(2.0) and row["se_pooled"] == pytest.approx(1.0)
    table = (tmp_path / "bench" / "training_seeds.md").read_text()
    assert "| **mean** | **+2.00** (n/a; 1.00) |" in table and "nan" not in table


def test_a_folder_without_the_agents_or_the_rules_is_a_usage_error(training_seeds, tmp_path, capsys):
    write_runs(tmp_path / "bench", [fake_record("margin", "margin", 0, [0.3, 0.4, 0.5], [[9, 1]] * 3)])
    with pytest.raises(SystemExit):
        training_seeds.main([str(tmp_path / "bench"), "--agents", "dqn_s", "--against", "margin"])
    assert "no agent named dqn_s" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        training_seeds.main([str(tmp_path / "bench"), "--agents", "margin", "--against", "entropy"])
    assert "no runs of ['entropy']" in capsys.readouterr().err
    write_runs(tmp_path / "other", [fake_record("dqn_s0", "/m.zip", 1, [0.3, 0.4, 0.5], [[9, 1]] * 3)])
    (tmp_path / "other" / "runs" / "margin__seed0.json").write_text(
        json.dumps(fake_record("margin", "margin", 0, [0.3, 0.4, 0.5], [[9, 1]] * 3))
    )
    with pytest.raises(SystemExit):  # different test seeds: nothing to pair
        training_seeds.main([str(tmp_path / "other"), "--agents", "dqn_s", "--against", "margin"])
    assert "share no test seed" in capsys.readouterr().err


def test_paired_with_compares_each_agent_with_the_learner_of_its_training_seed(training_seeds, tmp_path, capsys):
    px = [[9, 1]] * 3
    # at budget 30: new_s0 - old_s0 is +1 / +3 on test seeds 0 / 1; new_s1 - old_s1 is 0 / 0
    records = [
        fake_record("margin", "margin", 0, [0.30, 0.40, 0.50], px),
        fake_record("margin", "margin", 1, [0.30, 0.40, 0.50], px),
        fake_record("new_s0", "/m/n0.zip", 0, [0.31, 0.41, 0.52], px),
        fake_record("new_s0", "/m/n0.zip", 1, [0.31, 0.41, 0.54], px),
        fake_record("new_s1", "/m/n1.zip", 0, [0.31, 0.41, 0.50], px),
        fake_record("new_s1", "/m/n1.zip", 1, [0.31, 0.41, 0.50], px),
        fake_record("old_s0", "/m/o0.zip", 0, [0.30, 0.40, 0.51], px),
        fake_record("old_s0", "/m/o0.zip", 1, [0.30, 0.40, 0.51], px),
        fake_record("old_s1", "/m/o1.zip", 0, [0.30, 0.40, 0.50], px),
        fake_record("old_s1", "/m/o1.zip", 1, [0.30, 0.40, 0.50], px),
    ]
    write_runs(tmp_path / "bench", records)
    argv = [str(tmp_path / "bench"), "--agents", "new_s", "--against", "margin", "--paired-with", "old_s"]
    paired = training_seeds.main(argv)["paired_with"]
    assert paired["pairs"] == {"new_s0": "old_s0", "new_s1": "old_s1"}
    row = paired["30"]
    assert row["per_agent"]["new_s0"]["mean"] == pytest.approx(2.0) and row["per_agent"]["new_s1"]["mean"] == 0.0
    assert row["mean"] == pytest.approx(1.0) and row["se_training_seeds"] == pytest.approx(1.0)
    assert row["se_pooled"] == pytest.approx(0.5)  # pair means +0.5 / +1.5 over the test seeds: sd 0.71
    assert "| new_s0 - old_s0 |" in (tmp_path / "bench" / "training_seeds.md").read_text()
    with pytest.raises(SystemExit):
        training_seeds.main([*argv[:-1], "gone_s"])
    assert "no runs of ['gone_s0', 'gone_s1']" in capsys.readouterr().err
