"""Every command refuses a bad --threads while parsing, with one message, before any data or network is touched."""

from __future__ import annotations

import pytest

from experiments.benchmark.cli import main as evaluate_main
from experiments.error_model import main as fit_error_model_main
from experiments.requests.command import main as request_main
from experiments.rule_selection import main as select_rule_main
from experiments.training.run import main as train_main
from segal_env.supervised import main as supervised_main


@pytest.mark.parametrize(
    "command", [train_main, evaluate_main, select_rule_main, request_main, supervised_main, fit_error_model_main]
)
@pytest.mark.parametrize("value", ["0", "-2", "1.5", "two"])
def test_a_bad_thread_count_is_a_usage_error_of_every_command(command, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        command(["--threads", value])
    assert exit_info.value.code == 2
    assert f"--threads: must be a whole number of torch threads >= 1, got '{value}'" in capsys.readouterr().err
