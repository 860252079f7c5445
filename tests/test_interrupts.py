"""Ctrl-C and SIGTERM always stop `bhi run` (exit 130 / 143, one line) and nothing is published after
the signal, also in the windows where Dagster's nested interrupt capture cleared its own flag (the
run's setup and teardown)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from dagster._utils.interrupts import capture_interrupts

from conftest import REPO_ROOT, Drop
from pipelines import interrupts

TRIAL_TIMEOUT = 600  # seconds a trial may take on a loaded machine (a run of the tiny drop takes ~10 s)


def test_a_signal_dagsters_nested_capture_cleared_is_still_seen():
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        interrupts.install()
        interrupts.finish()  # record only: nothing raised in the test process
        with capture_interrupts():  # as during a run: Dagster's handler takes the signal and sets its flag
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        # leaving the capture cleared Dagster's flag (the run would have gone on and published)
        assert interrupts.received() == signal.SIGTERM
        with pytest.raises(interrupts.Interrupted, match=r"interrupted \(SIGTERM\) before publishing"):
            interrupts.stop_if_interrupted("publishing the outputs")
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(-1)
        interrupts._received.clear()


def _wait_for(condition, proc: subprocess.Popen, timeout: float = TRIAL_TIMEOUT) -> bool:
    """Poll every 5 ms until condition() holds (True) or the process ended (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the run neither reached the point nor ended")


def test_timed_interrupts_always_stop_the_run_with_130_or_143_and_never_publish_after(tmp_path):
    drop = Drop(tmp_path / "drop")
    drop.enroll("P1")
    drop.month("P1", "2026-05", 45)
    folder, out = drop.write(), tmp_path / "out"
    lock, current = out / "warehouse.duckdb.lock", out / ".publications" / "current"
    command = [sys.executable, "-m", "pipelines.cli", "run", "--extracts", str(folder), "--out", str(out),
               "--as-of", "2026-06-20", "--allow-stale"]

    def link():
        return os.readlink(current) if current.is_symlink() else None

    # (signal, when): the lock taken (the run's setup: Dagster's capture starts), then later steps by
    # delay, and right after the publication swap (the run's teardown: Dagster's capture ends)
    trials = [(signal.SIGINT, 0.0), (signal.SIGTERM, 0.0), (signal.SIGINT, 0.4), (signal.SIGTERM, 0.8),
              (signal.SIGINT, 1.6), (signal.SIGTERM, 3.2), (signal.SIGINT, 6.4), (signal.SIGTERM, "published")]
    interrupted = 0
    started = time.monotonic()
    for signum, when in trials:
        lock.unlink(missing_ok=True)
        before = link()
        proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if when == "published":
                reached = _wait_for(lambda before=before: link() != before, proc)
            else:
                reached = _wait_for(lambda: lock.exists() and lock.stat().st_size > 0, proc)
                time.sleep(when)
                reached = reached and proc.poll() is None
            if reached:
                proc.send_signal(signum)
            _, err = proc.communicate(timeout=TRIAL_TIMEOUT)
        finally:
            proc.kill()
        if not reached:  # the run ended before the signal: nothing to check
            assert proc.returncode == 0, err
            continue
        interrupted += 1
        lines = err.strip().splitlines()
        name = signal.Signals(signum).name
        assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], (when, err)
        assert len(lines) == 1 and lines[0].startswith(f"bhi run: interrupted ({name}): stopped at a step boundary;"), err
        if when == "published":
            assert link() != before and lines[0].endswith("this run's outputs had been published before the signal (they are complete)")
        else:  # a signal before the swap: never a publication after it
            assert link() == before and lines[0].endswith("nothing of this run was published: the outputs are those of the last published run")
    print(f"{interrupted} of {len(trials)} runs interrupted in {time.monotonic() - started:.0f} s")
    assert interrupted >= len(trials) - 2
