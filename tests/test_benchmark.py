"""The benchmark (evaluate.py / experiments.benchmark): resume, aggregation, plots, backend equivalence, errors.

Runs use the shared tiny synthetic configuration (conftest; 2 steps of 4 regions, 8-image test split)
and the session's cache dir, so the starting network is pre-trained once (one epoch).
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import segal_env
from experiments.benchmark import aggregate as agg
from experiments.benchmark import backends as backends_module
from experiments.benchmark import reports, statistics
from experiments.benchmark.cli import main
from experiments.benchmark.plots import make_plots
from experiments.benchmark.runner import SCHEMA_VERSION, is_complete, run_episode
from experiments.provenance import provenance
from segal_env.runtime import torch_threads

from conftest import TINY_SYNTHETIC, as_cli, fake_record

REPO = Path(__file__).resolve().parents[1]
BUDGETS = ["4", "8"]
POLICIES = ["random", "bald"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Module-wide (the module's fixtures train too): one torch thread, as conftest's one_torch_thread."""
    with torch_threads():
        yield


@pytest.fixture(scope="module")
def cache_dir(segal_cache) -> Path:
    return segal_cache


def tiny_args(out: Path, cache: Path, *extra: str, policies=POLICIES, seeds: int = 2) -> list[str]:
    return [
        "--env",
        "SegAL-Synthetic-v0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--no-progress",
        "--policies",
        *policies,
        "--seeds",
        str(seeds),
        "--budgets",
        *BUDGETS,
        "--out",
        str(out),
        "--env-kwargs",
        *as_cli({**TINY_SYNTHETIC, "cache_dir": str(cache)}, exclude=("budget",)),
        *extra,
    ]


def numbers(out: Path) -> dict:
    """run id -> the per-budget numbers of its result file."""
    result = {}
    for path in sorted((out / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        result[record["run_id"]] = [
            (e["budget"], e["test_miou"], e["test_per_class_iou"], e["reward_set_miou"], e["labeled_pixels_per_class"])
            for e in record["entries"]
        ]
    return result


@pytest.fixture(scope="module")
def serial_out(tmp_path_factory, cache_dir) -> Path:
    """One complete serial benchmark (2 policies x 2 seeds), shared by several tests."""
    out = tmp_path_factory.mktemp("serial")
    assert main(tiny_args(out, cache_dir)) == 0
    return out


# ---- a complete run ----------------------------------------------------------------------------------
def test_serial_benchmark_writes_results_tables_and_plots(serial_out):
    runs = sorted(p.name for p in (serial_out / "runs").glob("*.json"))
    assert runs == ["bald__seed0.json", "bald__seed1.json", "random__seed0.json", "random__seed1.json"]
    record = json.loads((serial_out / "runs" / "bald__seed1.json").read_text())
    assert record["schema_version"] == SCHEMA_VERSION and is_complete(record)
    assert record["env_id"] == "SegAL-Synthetic-v0" and record["env_kwargs"]["num_pools"] == 4
    assert record["policy"] == "bald" and record["seed"] == 1 and record["wall_time_s"] > 0
    assert record["versions"] == provenance("cpu")  # segal's own version, not the metadata of another package
    assert record["versions"]["segal"] == segal_env.__version__
    assert record["env_settings"]["reward"] == "gain" and "device" not in record["env_settings"]
    assert [e["budget"] for e in record["entries"]] == [4, 8]
    n_classes = len(record["class_names"])
    for entry in record["entries"]:
        assert 0.0 <= entry["test_miou"] <= 1.0 and 0.0 <= entry["reward_set_miou"] <= 1.0
        assert entry["reward_set_final_miou"] == entry["reward_set_miou"]  # no final training: the episode's network
        assert len(entry["test_per_class_iou"]) == n_classes
        assert len(entry["labeled_pixels_per_class"]) == n_classes and sum(entry["labeled_pixels_per_class"]) > 0
    # more regions labeled -> at least as many labeled pixels per class
    first, last = record["entries"]
    assert all(b >= a for a, b in zip(first["labeled_pixels_per_class"], last["labeled_pixels_per_class"]))
    for name in (
        "results.md",
        "results.csv",
        "per_class_iou.csv",
        "labeled_pixels.csv",
        "headline.csv",
        "summary.md",
        "summary.json",
        "benchmark.json",
    ):
        assert (serial_out / name).is_file(), name
    for name in (
        "miou_vs_regions.png",
        "per_class_iou_8.png",
        "class_distribution_8.png",
        "headline_regions_to_target.png",
    ):
        assert (serial_out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "| random |" in (serial_out / "results.md").read_text()


def test_same_seed_same_start_for_every_policy(serial_out):
    """Identical starting conditions per seed: the same D_R mIoU before the first step, whatever the policy."""
    start = {
        p.stem: json.loads(p.read_text())["start"]["reward_set_miou"] for p in (serial_out / "runs").glob("*.json")
    }
    assert start["random__seed0"] == start["bald__seed0"] == start["random__seed1"]


# ---- resume ------------------------------------------------------------------------------------------
def test_interrupted_benchmark_resumes_and_skips_finished_runs(tmp_path, cache_dir, monkeypatch):
    out = tmp_path / "bench"
    real_run = backends_module.run_episode
    calls: list[str] = []

    def interrupting(spec, progress=None):
        calls.append(spec.run_id)
        if spec.run_id == "bald__seed0":

            def stop(event):
                if event["event"] == "step":
                    raise KeyboardInterrupt  # Ctrl-C in the middle of a run

            return real_run(spec, stop)
        return real_run(spec, progress)

    monkeypatch.setattr(backends_module, "run_episode", interrupting)
    assert main(tiny_args(out, cache_dir, "--no-plots", seeds=1)) == 130
    assert calls == ["random__seed0", "bald__seed0"]
    files = sorted(p.name for p in (out / "runs").iterdir())
    assert files == ["random__seed0.json"], "the interrupted run must leave no (partial or temporary) file"
    finished_before = (out / "runs" / "random__seed0.json").read_text()

    # a torn temporary file of a killed writer, and a truncated result file, are not taken as results
    (out / "runs" / ".bald__seed1.x1y2.tmp.json").write_text('{"schema_version": 1, "ent')
    (out / "runs" / "bald__seed1.json").write_text('{"schema_version": 1, "kind": "segal-benchmark-run", "ent')
    calls.clear()
    monkeypatch.setattr(
        backends_module,
        "run_episode",
        lambda spec, progress=None: (calls.append(spec.run_id), real_run(spec, progress))[1],
    )
    assert main(tiny_args(out, cache_dir, "--no-plots", seeds=2)) == 0
    assert calls == ["bald__seed0", "random__seed1", "bald__seed1"]  # random__seed0 was skipped
    assert (out / "runs" / "random__seed0.json").read_text() == finished_before
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "bald__seed0.json",
        "bald__seed1.json",
        "random__seed0.json",
        "random__seed1.json",
    ]
    assert all(is_complete(json.loads(p.read_text())) for p in (out / "runs").iterdir())

    calls.clear()
    assert main(tiny_args(out, cache_dir, "--no-plots", seeds=2)) == 0
    assert calls == []  # everything finished: nothing runs again, tables are rebuilt


def test_out_folder_of_another_configuration_is_refused(tmp_path, cache_dir, capsys):
    out = tmp_path / "bench"
    args = tiny_args(out, cache_dir, "--no-plots", seeds=1)
    (out / "runs").mkdir(parents=True)
    (out / "benchmark.json").write_text(json.dumps({"config": {"env_id": "other"}}))
    stored = fake_record("random", "random", 0, [0.3, 0.4, 0.5], [[1, 1]] * 3)  # a finished run of that configuration
    (out / "runs" / "random__seed0.json").write_text(json.dumps(stored))
    assert main(args) == 2
    assert "another configuration" in capsys.readouterr().err
    assert json.loads((out / "runs" / "random__seed0.json").read_text()) == stored  # untouched


def test_changed_env_defaults_are_not_mixed_with_old_results(serial_out, tmp_path, cache_dir, capsys):
    """Same user kwargs, but the env's effective settings differ from the stored ones (e.g. a new preset)."""
    out = tmp_path / "bench"
    shutil.copytree(serial_out, out)
    stored = json.loads((out / "runs" / "random__seed0.json").read_text())
    assert stored["env_settings"]["num_pools"] == 4 and stored["env_settings"]["lr"] is not None
    stored["env_settings"]["lr"] = 0.123  # as if produced under another preset
    (out / "runs" / "random__seed0.json").write_text(json.dumps(stored))
    (out / "runs" / "bald__seed1.json").unlink()  # something left to run
    assert main(tiny_args(out, cache_dir, "--no-plots")) == 2
    err = capsys.readouterr().err
    assert "effective settings changed" in err and "lr: 0.123 ->" in err
    assert not (out / "runs" / "bald__seed1.json").exists()


def test_a_setting_added_since_a_record_matches_it_only_while_off():
    from experiments.benchmark.runner import settings_differences

    stored = {"lr": 0.1}  # written before final_start_share existed
    assert settings_differences(stored, {"lr": 0.1, "final_start_share": None}) == {}
    assert settings_differences(stored, {"lr": 0.1, "final_start_share": 0.3}) == {"final_start_share": (None, 0.3)}
    assert settings_differences({"lr": 0.1, "old": 1}, {"lr": 0.1}) == {"old": (1, None)}


@pytest.mark.parametrize(("setting", "value"), [("reward", "gain_over_random"), ("lr_decay", False), ("dropout", 0.3)])
def test_resume_with_a_changed_setting_is_refused_naming_it(serial_out, tmp_path, cache_dir, capsys, setting, value):
    """Every result-changing setting is in the fingerprint, including those the old hand-made list left out."""
    out = tmp_path / "bench"
    shutil.copytree(serial_out, out)
    assert main(tiny_args(out, cache_dir, f"{setting}={json.dumps(value)}", "--no-plots")) == 2  # an env kwarg
    err = capsys.readouterr().err
    assert "another configuration" in err and f"env_kwargs.{setting}: None -> {value!r}" in err
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(p.name for p in (serial_out / "runs").iterdir())


@pytest.mark.parametrize("setting", ["reward", "lr_decay"])
def test_changed_preset_of_any_setting_is_refused_naming_it(serial_out, tmp_path, cache_dir, capsys, setting):
    """Same command, but a default that the user never set has changed since the results were written."""
    out = tmp_path / "bench"
    shutil.copytree(serial_out, out)
    manifest = json.loads((out / "benchmark.json").read_text())
    current = manifest["env_settings"][setting]
    manifest["env_settings"][setting] = "old_default"
    (out / "benchmark.json").write_text(json.dumps(manifest))
    assert main(tiny_args(out, cache_dir, "--no-plots")) == 2
    assert f"{setting}: 'old_default' -> {current!r}" in capsys.readouterr().err

    # the same change seen only in a record (a manifest rewritten since) is caught when new runs would start
    manifest["env_settings"][setting] = current
    (out / "benchmark.json").write_text(json.dumps(manifest))
    stored = json.loads((out / "runs" / "random__seed0.json").read_text())
    stored["env_settings"][setting] = "old_default"
    (out / "runs" / "random__seed0.json").write_text(json.dumps(stored))
    (out / "runs" / "bald__seed1.json").unlink()
    assert main(tiny_args(out, cache_dir, "--no-plots")) == 2
    assert f"{setting}: 'old_default' -> {current!r}" in capsys.readouterr().err


def test_folder_of_an_older_version_is_refused_with_a_way_out(serial_out, tmp_path, cache_dir, capsys):
    """Results written before every setting was recorded cannot be resumed; their tables can still be rebuilt."""
    out = tmp_path / "bench"
    shutil.copytree(serial_out, out)
    manifest = json.loads((out / "benchmark.json").read_text())
    del manifest["env_settings"]
    (out / "benchmark.json").write_text(json.dumps(manifest))
    for path in (out / "runs").glob("*.json"):
        record = json.loads(path.read_text())
        del record["env_settings"]
        path.write_text(json.dumps(record))
    assert main(tiny_args(out, cache_dir, "--no-plots")) == 2
    err = capsys.readouterr().err
    assert "older segal" in err and "another --out" in err and "--aggregate-only" in err
    assert main(["--aggregate-only", "--out", str(out), "--no-plots"]) == 0


# ---- errors ------------------------------------------------------------------------------------------
def test_unknown_policy_is_an_error(tmp_path, cache_dir):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "evaluate.py"),
            *tiny_args(tmp_path / "x", cache_dir, policies=["random", "no_such_policy"]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "unknown policy 'no_such_policy'" in result.stderr and "random" in result.stderr
    assert not (tmp_path / "x" / "runs").exists()  # nothing ran


def test_a_reference_without_results_is_refused_before_any_run(tmp_path, cache_dir, capsys):
    out = tmp_path / "ref"
    assert main(tiny_args(out, cache_dir, "--reference", "entropy", policies=["random"])) == 2
    err = capsys.readouterr().err
    assert "--reference 'entropy' is neither in --policies (random) nor among the results" in err
    assert "add it to --policies or drop --reference" in err
    assert not (out / "runs").exists()  # nothing ran
    assert main(["--aggregate-only", "--reference", "entropy", "--out", str(out)]) == 2
    assert "--reference 'entropy' is not among the results" in capsys.readouterr().err


def test_a_device_this_machine_lacks_is_a_usage_error(tmp_path, capsys):
    assert main(["--device", "tpu", "--out", str(tmp_path / "b")]) == 2
    assert "--device: device='tpu' is not a torch device; use device='auto'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(RuntimeError, match=r"\.\[ray\]"):
        backends_module.import_ray()


# ---- backends ----------------------------------------------------------------------------------------
def test_process_workers_give_the_same_numbers_as_serial(serial_out, tmp_path, cache_dir):
    out = tmp_path / "workers"
    assert main(tiny_args(out, cache_dir, "--no-plots", "--workers", "2")) == 0
    assert numbers(out) == numbers(serial_out)


def test_ray_gives_the_same_numbers_as_serial(serial_out, tmp_path, cache_dir):
    pytest.importorskip("ray", reason='Ray is an optional extra (pip install -e ".[ray]")')
    out = tmp_path / "ray"
    assert main(tiny_args(out, cache_dir, "--no-plots", "--ray", "--ray-cpus", "1", "--ray-num-cpus", "2")) == 0
    assert numbers(out) == numbers(serial_out)


def test_run_episode_is_a_pure_function_of_its_spec(serial_out, cache_dir):
    """The in-process runner (what every backend calls) repeats the stored numbers exactly."""
    from experiments.benchmark.cli import build_parser
    from experiments.benchmark.protocol import make_specs, resolve_config

    config = resolve_config(build_parser().parse_args(tiny_args(serial_out, cache_dir, seeds=1)))
    spec = next(s for s in make_specs(config) if s.policy == "random")
    record = run_episode(spec)
    stored = json.loads((serial_out / "runs" / "random__seed0.json").read_text())
    assert record["entries"][-1]["test_miou"] == stored["entries"][-1]["test_miou"]
    assert record["trace"]["reward_set_miou"] == stored["trace"]["reward_set_miou"]


# ---- aggregation on a hand-made results set ------------------------------------------------------------


@pytest.fixture()
def fake_results() -> list[dict]:
    px = [[90, 10], [180, 20], [270, 30]]
    agent_px = [[60, 40], [120, 80], [180, 120]]
    return [
        fake_record("random", "random", 0, [0.30, 0.40, 0.50], px),
        fake_record("random", "random", 1, [0.32, 0.42, 0.52], px),
        fake_record("entropy", "entropy", 0, [0.35, 0.45, 0.55], px),
        fake_record("entropy", "entropy", 1, [0.35, 0.47, 0.57], px),
        fake_record("agent", "/models/agent.zip", 0, [0.40, 0.58, 0.60], agent_px),
        fake_record("agent", "/models/agent.zip", 1, [0.42, 0.60, 0.62], agent_px),
    ]


def test_regions_to_reach_interpolates_and_handles_edges():
    assert statistics.regions_to_reach([10, 20, 30], [0.4, 0.6, 0.7], 0.5) == (pytest.approx(15.0), "interpolated")
    assert statistics.regions_to_reach([10, 20, 30], [0.4, 0.6, 0.7], 0.6) == (20.0, "at_budget")
    assert statistics.regions_to_reach([10, 20, 30], [0.4, 0.6, 0.7], 0.3) == (10.0, "first_budget")
    assert statistics.regions_to_reach([10, 20, 30], [0.4, 0.6, 0.7], 0.8) == (None, "not_reached")
    # the first crossing counts, even when the curve dips below the target afterwards
    assert statistics.regions_to_reach([10, 20, 30], [0.4, 0.8, 0.5], 0.6) == (pytest.approx(15.0), "interpolated")
    assert statistics.saving_percent(30.0, 18.0) == pytest.approx(40.0)
    assert statistics.saving_percent(30.0, None) is None


def test_aggregation_matches_hand_computed_values(fake_results, tmp_path):
    summary = agg.summarize(fake_results, policy_order=["random", "entropy", "agent"])
    assert summary["policies"] == ["random", "entropy", "agent"]
    random_curve = summary["curves"]["random"]
    assert random_curve["budgets"] == [10, 20, 30] and random_curve["n_seeds"] == [2, 2, 2]
    assert random_curve["test_miou_mean"] == pytest.approx([0.31, 0.41, 0.51])
    assert random_curve["test_miou_std"] == pytest.approx([math.sqrt(2) * 0.01] * 3)  # sample std of (x, x + 0.02)
    assert summary["curves"]["entropy"]["test_miou_std"] == pytest.approx(
        [0.0, math.sqrt(2) * 0.01, math.sqrt(2) * 0.01]
    )
    assert summary["curves"]["agent"]["reward_set_miou_mean"] == pytest.approx([0.46, 0.64, 0.66])
    assert summary["per_class_iou"]["agent"]["30"]["mean"] == pytest.approx([0.71, 0.51])
    assert summary["labeled_pixels"]["agent"]["30"]["fraction"] == pytest.approx([0.6, 0.4])
    assert summary["labeled_pixels"]["random"]["30"]["fraction"] == pytest.approx([0.9, 0.1])
    assert summary["rare_classes"]["names"] == ["pole"]

    head = summary["headline"]
    assert head["reference"] == "entropy"  # the best baseline: final 0.56 > random's 0.51; the agent is no baseline
    assert head["target_miou"] == pytest.approx(0.56)
    rows = {r["policy"]: r for r in head["rows"]}
    assert rows["entropy"]["regions_to_target"] == pytest.approx(30.0)
    assert rows["entropy"]["saving_percent"] == pytest.approx(0.0)
    # agent: 0.41 at 10, 0.59 at 20 -> 10 + (0.56 - 0.41) / 0.18 * 10 regions
    assert rows["agent"]["regions_to_target"] == pytest.approx(10 + 0.15 / 0.18 * 10)
    assert rows["agent"]["saving_percent"] == pytest.approx(100 * (30 - (10 + 0.15 / 0.18 * 10)) / 30)
    assert rows["random"]["regions_to_target"] is None and rows["random"]["how"] == "not_reached"
    assert rows["random"]["saving_percent"] is None

    fixed = agg.summarize(fake_results, target_miou=0.45)["headline"]
    fixed_rows = {r["policy"]: r for r in fixed["rows"]}
    entropy_regions, agent_regions = 10 + 0.10 / 0.11 * 10, 10 + 0.04 / 0.18 * 10  # 0.35 -> 0.46, 0.41 -> 0.59
    assert fixed_rows["random"]["regions_to_target"] == pytest.approx(24.0)  # 0.41 at 20 -> 0.51 at 30
    assert fixed_rows["entropy"]["regions_to_target"] == pytest.approx(entropy_regions)
    assert fixed_rows["agent"]["regions_to_target"] == pytest.approx(agent_regions)
    assert fixed_rows["agent"]["saving_percent"] == pytest.approx(
        100 * (entropy_regions - agent_regions) / entropy_regions
    )
    assert fixed_rows["random"]["saving_percent"] == pytest.approx(100 * (entropy_regions - 24.0) / entropy_regions)

    tables = reports.csv_tables(summary)
    lines = tables["results.csv"].splitlines()
    assert lines[0] == (
        "policy,budget,n_seeds,test_miou_mean,test_miou_std,reward_set_miou_mean,reward_set_miou_std,"
        "reward_set_final_miou_mean,reward_set_final_miou_std"
    )
    assert lines[1].startswith("random,10,2,0.31")
    assert "agent" in tables["headline.csv"] and "not_reached" in tables["headline.csv"]
    markdown = reports.miou_markdown(summary)
    assert "| random | 31.00 ± 1.41 | 41.00 ± 1.41 | 51.00 ± 1.41 |" in markdown
    report = reports.report_markdown(summary)
    assert "not reached (> 30)" in report and "+38.9%" in report

    plots = make_plots(summary, tmp_path)
    assert set(plots.values()) == {
        "miou_vs_regions.png",
        "reward_set_miou_vs_regions.png",
        "per_class_iou_30.png",
        "class_distribution_30.png",
        "headline_regions_to_target.png",
    }
    for name in plots.values():
        assert (tmp_path / name).stat().st_size > 1000
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_report_compares_policies_on_the_reward_set_of_the_networks_scored_on_test(fake_results):
    """With final training, each entry's reward_set_final_miou (D_R of the network scored on test) gets a
    table and paired differences: the comparison a user without a test split can make."""
    assert "after the final training" not in reports.report_markdown(agg.summarize(fake_results))  # none stored
    for record in fake_results:
        record["final_training"] = True
        for entry in record["entries"]:
            entry["reward_set_final_miou"] = entry["test_miou"] + (0.1 if record["policy"] == "agent" else 0.0)
    summary = agg.summarize(fake_results, reference="entropy")
    assert summary["curves"]["agent"]["reward_set_final_miou_mean"] == pytest.approx([0.51, 0.69, 0.71])
    by_reward_set = summary["paired_reward_set_final"]["agent"]["30"]
    assert by_reward_set["mean"] == pytest.approx(summary["paired"]["agent"]["30"]["mean"] + 0.1)
    assert by_reward_set["n"] == 2
    report = reports.report_markdown(summary)
    assert "## Reward-set (D_R) mIoU (%) of the network scored on test (after the final training)" in report
    assert "| agent | 51.00 ± 1.41 | 69.00 ± 1.41 | 71.00 ± 1.41 |" in report
    assert "agent,30,2,0.61" in reports.csv_tables(summary)["results.csv"]
    fake_results[0]["entries"][0]["reward_set_final_miou"] = None  # one run without it: that cell is blank
    partial = agg.summarize(fake_results, reference="entropy")
    assert partial["curves"]["random"]["reward_set_final_miou_mean"][0] is None
    assert "10" not in partial["paired_reward_set_final"]["random"]


def test_aggregate_only_rebuilds_from_result_files(fake_results, tmp_path, capsys):
    out = tmp_path / "agg"
    for record in fake_results:
        (out / "runs").mkdir(parents=True, exist_ok=True)
        (out / "runs" / f"{record['run_id']}.json").write_text(json.dumps(record))
    assert main(["--aggregate-only", "--out", str(out), "--no-plots", "--policies", "random"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["headline"]["reference"] == "entropy"
    assert "Labeled regions needed to reach 56.00% test mIoU" in capsys.readouterr().out


def test_budgets_that_are_not_multiples_of_the_pool_count_name_a_fix(tmp_path, capsys):
    assert main(["--budgets", "10", "20", "--out", str(tmp_path / "b")]) == 2
    assert "--budgets [10, 20] are not multiples of num_pools=8" in capsys.readouterr().err


def test_kill_9_in_the_middle_then_rerun_gives_the_uninterrupted_tables(serial_out, tmp_path, cache_dir):
    """A benchmark process killed with SIGKILL mid-way (no handler runs) and rerun ends with the same result
    files and tables as a benchmark that was never interrupted."""
    out = tmp_path / "killed"
    args = tiny_args(out, cache_dir, "--no-plots")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "evaluate.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not list((out / "runs").glob("*.json")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finished = len(list((out / "runs").glob("*.json")))
    assert 1 <= finished < 4, "the benchmark must be killed between its first and its last result"
    assert main(args) == 0
    assert numbers(out) == numbers(serial_out)
    assert (out / "results.md").read_text() == (serial_out / "results.md").read_text()


def test_a_single_seed_has_no_regions_interval_rather_than_not_reached(fake_results):
    """One seed cannot be resampled: the interval is absent ("-"), not "not reached"."""
    one_seed = [r for r in fake_results if r["seed"] == 0]
    rows = {row["policy"]: row for row in agg.summarize(one_seed)["headline"]["rows"]}
    assert rows["agent"]["regions_to_target"] is not None and rows["agent"]["regions_interval_90"] is None
    assert "| - |" in reports.headline_markdown(agg.summarize(one_seed))
    two_seeds = {row["policy"]: row for row in agg.summarize(fake_results)["headline"]["rows"]}
    assert two_seeds["agent"]["regions_interval_90"][0] is not None
