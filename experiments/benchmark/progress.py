"""Progress of a benchmark: which runs are going on, their step and next budget, and the time left.

In a terminal: a live rich display (one overall bar with the estimated time left, one line per
active run). Elsewhere (logs, CI, ``--no-progress``-less pipes): one plain line per run start,
per budget reached and per run end, each with the estimated time left. Time left is estimated
from the steps done so far (budget steps with a test evaluation cost more: the estimate is rough).
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from experiments.benchmark.runner import RunSpec


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class BenchmarkProgress:
    """Consumes the runner's events (``event``) and the driver's run outcomes (``finished``/``failed``)."""

    def __init__(
        self,
        specs: list[RunSpec],
        steps_per_run: int,
        console: Console | None = None,
        live: bool | None = None,
        enabled: bool = True,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.live = enabled and (self.console.is_terminal if live is None else live)
        self.specs = {spec.run_id: spec for spec in specs}
        self.steps_per_run = max(int(steps_per_run), 1)
        self.total = self.steps_per_run * len(specs)
        self.done_steps = 0
        self.seen: dict[str, int] = {}
        self.closed: set[str] = set()
        self.runs_done = 0
        self.start = time.perf_counter()
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._overall = None

    # ---- context -------------------------------------------------------------------------------
    def __enter__(self):
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
                refresh_per_second=4,
            )
            self._progress.__enter__()
            self._overall = self._progress.add_task(f"all runs (0/{len(self.specs)})", total=self.total, info="steps")
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    # ---- helpers -------------------------------------------------------------------------------
    def eta(self) -> float | None:
        if self.done_steps == 0:
            return None
        elapsed = time.perf_counter() - self.start
        return elapsed / self.done_steps * (self.total - self.done_steps)

    def _label(self, run: str) -> str:
        spec = self.specs.get(run)
        return f"{spec.policy} seed {spec.seed}" if spec else run

    def _advance(self, run: str, step: int) -> None:
        delta = max(0, min(step, self.steps_per_run) - self.seen.get(run, 0))
        self.seen[run] = self.seen.get(run, 0) + delta
        self.done_steps += delta
        if self._progress is not None:
            self._progress.update(self._overall, advance=delta)

    def _print(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    # ---- events --------------------------------------------------------------------------------
    def event(self, event: dict) -> None:
        run = event.get("run", "?")
        if run in self.closed:
            return
        kind = event.get("event")
        step, steps = int(event.get("step", 0)), int(event.get("steps", self.steps_per_run))
        self._advance(run, step)
        next_budget = event.get("next_budget")
        info = f"labeled {event.get('labeled', 0)}" + (f", next budget {next_budget}" if next_budget else "")
        if "test_miou" in event and event.get("budget") is not None:
            info += f", test mIoU@{event['budget']} {100 * event['test_miou']:.2f}"
        if self._progress is not None:
            if run not in self._tasks:
                self._tasks[run] = self._progress.add_task(f"  {self._label(run)}", total=steps, info="")
            self._progress.update(self._tasks[run], completed=step, info=info)
        elif kind == "start":
            self._print(
                f"[run] {self._label(run)}: started ({steps} steps, first budget {next_budget}); "
                f"{self.runs_done}/{len(self.specs)} runs done, time left ~{_fmt_seconds(self.eta())}"
            )
        elif "test_miou" in event and kind == "step":
            self._print(f"[run] {self._label(run)}: step {step}/{steps}, {info}; time left ~{_fmt_seconds(self.eta())}")

    def _close(self, run: str) -> None:
        self.closed.add(run)
        self._advance(run, self.steps_per_run)
        self.runs_done += 1
        if self._progress is not None:
            if run in self._tasks:
                self._progress.remove_task(self._tasks.pop(run))
            self._progress.update(self._overall, description=f"all runs ({self.runs_done}/{len(self.specs)})")

    def finished(self, spec: RunSpec, record: dict) -> None:
        self._close(spec.run_id)
        last = record["entries"][-1]
        self._print(
            f"[done] {self._label(spec.run_id)}: test mIoU@{last['budget']} {100 * last['test_miou']:.2f} "
            f"in {_fmt_seconds(record['wall_time_s'])} ({self.runs_done}/{len(self.specs)} runs, "
            f"time left ~{_fmt_seconds(self.eta())})"
        )

    def failed(self, spec: RunSpec, error: str) -> None:
        self._close(spec.run_id)
        last_line = error.strip().splitlines()[-1] if error.strip() else "unknown error"
        self._print(f"[failed] {self._label(spec.run_id)}: {last_line}")
