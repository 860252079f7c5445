"""Ctrl-C (SIGINT) and SIGTERM for the commands that run a job (`bhi run`, `bhi close`): the run
stops at the next step boundary, publishes nothing after the signal, and the command exits 130
(SIGINT) or 143 (SIGTERM) with one line.

Dagster alone does not guarantee it. While a run executes, its own handler only sets a flag
(`dagster._utils.interrupts.capture_interrupts`) that the executor polls between steps; the nested
capture around the run's setup and teardown clears that flag when it exits, so a signal arriving
there was lost and the run went on to publish with exit 0. Here the signal is recorded whatever
Python handler is installed: `signal.set_wakeup_fd` makes the interpreter write every signal's
number to a pipe of ours, below any handler. `stop_if_interrupted` reads it where a step starts (the
warehouse resource opens its connection, pipelines/defs/resources.py) and right before the
publication swaps the outputs in (pipelines/defs/assets_outputs.py, assets_month_end.py); the
command checks it again when the job returns. Outside a run (imports, the lock, the summary) our own
handler raises KeyboardInterrupt at once.

A Dagster daemon or UI run never calls `install`: there the checks do nothing and Dagster's own
termination applies. No Dagster import here."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from pipelines.safety import OperationalError

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(OperationalError):
    """A SIGINT or SIGTERM reached the run: it stops before the next step (the message names the signal)."""


_received: list[int] = []  # SIGINT/SIGTERM numbers seen, first first
_pipe: dict[str, int] = {}  # read/write ends of the wakeup pipe
_raising = [False]  # our handler raises KeyboardInterrupt (outside Dagster's execution)


def install() -> None:
    """Record SIGINT and SIGTERM from now on (main thread only): our handler, and the wakeup pipe
    that also sees the signals Dagster's handler takes while a job runs."""
    if "r" not in _pipe:
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        _pipe.update(r=r, w=w)
    signal.set_wakeup_fd(_pipe["w"], warn_on_full_buffer=False)
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    _raising[0] = True


def finish() -> None:
    """The command is done: a signal from now on is recorded but raises nothing (its outcome stands)."""
    _raising[0] = False


def _handler(signum: int, _frame) -> None:
    _received.append(signum)
    if _raising[0]:
        raise KeyboardInterrupt


def received() -> int | None:
    """The first SIGINT or SIGTERM seen since `install`, or None."""
    r = _pipe.get("r")
    if r is not None:
        with contextlib.suppress(ValueError):  # armed again (asyncio's loops replace it); ValueError: not the main thread
            signal.set_wakeup_fd(_pipe["w"], warn_on_full_buffer=False)
        while True:
            try:
                data = os.read(r, 512)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                break
            _received.extend(n for n in data if n in EXIT_CODES)
    return _received[0] if _received else None


def stop_if_interrupted(where: str) -> None:
    """Raise Interrupted when a signal was seen: called at step boundaries and before the outputs are published."""
    signum = received()
    if signum is not None:
        raise Interrupted(f"interrupted ({signal.Signals(signum).name}) before {where}")


def published(out: Path) -> str | None:
    """The published run folder of an out folder (pipelines/outputs/publication.py), to tell after an
    interrupt whether this run got as far as publishing."""
    link = Path(out) / ".publications" / "current"
    try:
        return os.readlink(link)
    except OSError:
        return None


_watched: dict[str, object] = {}  # the out folder of the command and its publication when it started


def watch(out: Path) -> None:
    """Remember the out folder's publication before the job runs (see `message`)."""
    _watched.update(out=Path(out), before=published(out))


def message(command: str, signum: int) -> str:
    """The one line a command prints when a signal stopped it, saying whether its outputs were published."""
    state = "nothing was published"
    if "out" in _watched:
        state = (
            "this run's outputs had been published before the signal (they are complete)"
            if published(_watched["out"]) != _watched["before"]
            else "nothing of this run was published: the outputs are those of the last published run"
        )
    return f"{command}: interrupted ({signal.Signals(signum).name}): stopped at a step boundary; {state}"
