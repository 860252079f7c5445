"""What keeps a run from corrupting, mixing or forgetting: the run lock, the last good copies of the
warehouse (and `bhi restore`), owner-only file modes, clear errors for a full disk or a damaged
warehouse, and the drop check `bhi run` does before Dagster starts. No Dagster import here: the
command line uses this module to fail in well under a second.

- **Run lock.** `<warehouse>.lock` beside the warehouse, held with `fcntl.flock` by the process of a
  run from its first step to its last (the Warehouse resource takes it when Dagster initialises the
  run's resources and drops it at teardown; the nightly and month-end jobs run in one process, see
  pipelines/defs/schedules.py). `bhi run` / `bhi close` take it before Dagster starts and hold it
  until the summary is read; the resource then finds it already held by its own process. A second
  run waits up to BHI_LOCK_WAIT_SECONDS, then refuses with a message naming the holder. The kernel
  drops the lock when the holding process dies (kill -9 included): nothing stale to clean up.
- **Copies.** The first time a process takes the lock it keeps a copy of the warehouse as it was
  (checkpointed, then a file copy; a copy-on-write clone where the file system can, see copy_file)
  in `<warehouse>.copies/`, the last `warehouse_copies_kept` (data/reference/settings.csv) of them,
  plus always the newest one taken after a published run.
- **Modes.** Files a run creates are readable by the owner only (0600, folders 0700): the process
  umask is set while the lock is held; BHI_OUTPUT_MODE (e.g. 640) widens it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import fcntl
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

LOCK_WAIT_ENV = "BHI_LOCK_WAIT_SECONDS"
OUTPUT_MODE_ENV = "BHI_OUTPUT_MODE"
DEFAULT_FILE_MODE = 0o600
COPIES_SETTING = "warehouse_copies_kept"
FAULT_POINT_ENV = "BHI_FAULT_POINT"  # tests only: pause at a named point (see fault_point)
FAULT_MARKER_ENV = "BHI_FAULT_MARKER"

# Every suffix pipelines/ingest/readers.py reads (canonical names, profile patterns, FHIR NDJSON); a test
# keeps this in step with the readers (pipelines/defs/sensors.py re-exports these).
EXTRACT_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".xlsx", ".ndjson")
PROFILE_FILE = "bhi-profile.yaml"


class OperationalError(Exception):
    """An expected failure whose message says what happened, to which file, and what to do."""


class WarehouseLockedError(OperationalError):
    """The warehouse is in use by another run (the run lock) or another program (DuckDB's lock)."""


class WarehouseDamagedError(OperationalError):
    """The warehouse file cannot be opened as a DuckDB database."""


class DiskFullError(OperationalError):
    """A write failed for lack of space (or quota, or a file size limit)."""


class DropError(OperationalError):
    """The --extracts folder is missing, empty or holds nothing ingest can read."""


# names of these classes, for picking our message out of a Dagster error chain
OPERATIONAL_ERRORS = {c.__name__ for c in (OperationalError, WarehouseLockedError, WarehouseDamagedError,
                                            DiskFullError, DropError)}


# ------------------------------------------------------------------------------------------------
# the extract drop, checked before Dagster starts


def is_drop_file(name: str) -> bool:
    """True for a file ingest may read (by suffix) and for the drop's source profile."""
    lower = name.lower()
    if lower.startswith((".", "~$")):  # hidden files, Office lock files
        return False
    return lower == PROFILE_FILE or lower.endswith(EXTRACT_SUFFIXES)


def check_drop(folder: Path) -> None:
    """Raise DropError when `folder` is not a folder or holds no file ingest could read."""
    if not folder.exists():
        raise DropError(f"extract folder {folder} does not exist: check the --extracts path")
    if not folder.is_dir():
        raise DropError(f"--extracts {folder} is a file, not a folder: pass the folder that holds the extract files")
    names = [e.name for e in os.scandir(folder) if e.is_file()]
    if not names:
        raise DropError(f"extract folder {folder} is empty: check the --extracts path or wait for the delivery")
    if not any(is_drop_file(n) for n in names):
        raise DropError(
            f"extract folder {folder} holds {len(names)} file(s) but none ingest can read"
            f" (expected {' '.join('*' + s for s in EXTRACT_SUFFIXES)} or {PROFILE_FILE}): check the --extracts path"
        )


# ------------------------------------------------------------------------------------------------
# file modes


def output_modes() -> tuple[int, int]:
    """(file mode, folder mode) for everything a run creates: 0600/0700 unless BHI_OUTPUT_MODE
    (octal, e.g. 640) widens it; a folder gets x wherever its file mode has r."""
    raw = os.environ.get(OUTPUT_MODE_ENV, "").strip()
    mode = DEFAULT_FILE_MODE
    if raw:
        try:
            mode = int(raw, 8)
        except ValueError as exc:
            raise OperationalError(f"{OUTPUT_MODE_ENV} must be an octal file mode such as 600 or 640, got {raw!r}") from exc
        if not 0 <= mode <= 0o666:
            raise OperationalError(f"{OUTPUT_MODE_ENV} must be an octal file mode such as 600 or 640, got {raw!r}")
        mode |= 0o600  # the owner always reads and writes
    folder = mode | ((mode & 0o444) >> 2)
    return mode, folder


@contextlib.contextmanager
def output_umask():
    """While inside, new files and folders get the output mode: for a command that writes an output
    without holding the run lock (`bhi evidence`)."""
    previous = os.umask(0o777 & ~output_modes()[1])
    try:
        yield
    finally:
        os.umask(previous)


def secure(path: Path) -> None:
    """Give an existing file or folder the output mode (a folder created before the umask was set,
    or a file from before this version)."""
    file_mode, folder_mode = output_modes()
    if path.exists() and not path.is_symlink():
        path.chmod(folder_mode if path.is_dir() else file_mode)


# ------------------------------------------------------------------------------------------------
# full disk


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text or "File too large" in text


def disk_full_message(path: Path | str, what: str) -> str:
    return (
        f"disk full: no space left on the device holding {path} while {what}. Free space there"
        f" (df -h shows the device) and run again."
    )


@contextlib.contextmanager
def disk_errors(path: Path | str, what: str):
    """Turn a full-disk error (OSError ENOSPC/EDQUOT/EFBIG, or DuckDB's IO error saying so) into a
    DiskFullError naming the path (Python's own message has none for a failed write)."""
    try:
        yield
    except OperationalError:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            target = getattr(exc, "filename", None) or path
            raise DiskFullError(disk_full_message(target, what)) from exc
        raise


# ------------------------------------------------------------------------------------------------
# the run lock


def lock_wait_seconds() -> float:
    """BHI_LOCK_WAIT_SECONDS: how long to keep retrying a locked warehouse before failing (default 0)."""
    raw = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{LOCK_WAIT_ENV} must be a number of seconds, got {raw!r}") from exc
    return max(value, 0.0)


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


def copies_dir(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".copies")


@dataclass
class _Held:
    fd: int
    umask: int


_HELD: dict[str, _Held] = {}  # lock file -> this process's hold on it


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return ""
    return f" (held by {text})" if text else ""


def acquire_run_lock(warehouse: Path, holder: str = "") -> bool:
    """Take the run lock of `warehouse` for this process, waiting up to BHI_LOCK_WAIT_SECONDS.
    Returns True when this call took it (the caller releases it), False when this process already
    held it (the caller leaves it to whoever took it).
    While held, the process umask gives new files the output mode."""
    path = lock_path(Path(os.path.abspath(warehouse)))
    key = str(path)
    if key in _HELD:  # this process holds it already (e.g. `bhi run`, then the run's resource)
        return False
    file_mode, folder_mode = output_modes()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode)
    wait = lock_wait_seconds()
    started = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() - started >= wait:
                os.close(fd)
                waited = f" after waiting {wait:g} s ({LOCK_WAIT_ENV})" if wait > 0 else ""
                raise WarehouseLockedError(
                    f"warehouse {warehouse} is locked{waited}: another bhi run or Dagster run is writing it{_holder(path)}."
                    f" This run wrote nothing; try again when that run finishes (or set {LOCK_WAIT_ENV} to wait for it)."
                ) from None
            time.sleep(0.2)
    os.ftruncate(fd, 0)
    os.write(fd, f"process {os.getpid()}{': ' + holder if holder else ''}, since {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC\n".encode())
    os.fchmod(fd, file_mode)
    _HELD[key] = _Held(fd, os.umask(0o777 & ~folder_mode))
    return True


@contextlib.contextmanager
def reading_warehouse(warehouse: Path, command: str):
    """Hold the run lock shared while `command` reads the warehouse outside a run (`bhi evidence`,
    `bhi explain`): a run holds it exclusively from its first step to its last, but opens the file only
    step by step, so without the lock a read could see half a run (this run's as-of date, last run's
    evidence) and its read-only connection would make the run's next step fail to open the file.
    Readers do not exclude each other. Raises WarehouseLockedError while a run holds it."""
    path = lock_path(Path(os.path.abspath(warehouse)))
    if str(path) in _HELD:  # this process runs on it
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, output_modes()[0])
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WarehouseLockedError(
                f"warehouse {warehouse} is being written by a run{_holder(path)}: {command} read nothing;"
                " try again when that run finishes"
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def release_run_lock(warehouse: Path) -> None:
    key = str(lock_path(Path(os.path.abspath(warehouse))))
    held = _HELD.get(key)
    if held is None:
        return
    del _HELD[key]
    os.umask(held.umask)
    os.ftruncate(held.fd, 0)
    os.close(held.fd)  # closing the descriptor releases the flock


# ------------------------------------------------------------------------------------------------
# copies of the warehouse


def copies_kept(reference_dir: Path) -> int:
    """The `warehouse_copies_kept` row of settings.csv (0: no copies)."""
    with (Path(reference_dir) / "settings.csv").open(newline="") as fh:
        rows = {r["setting"]: r["value"] for r in csv.DictReader(fh)}
    if COPIES_SETTING not in rows:
        raise OperationalError(f"setting {COPIES_SETTING} is missing from {Path(reference_dir) / 'settings.csv'}")
    return max(int(rows[COPIES_SETTING]), 0)


@dataclass(frozen=True)
class Copy:
    path: Path
    taken_at: str  # YYYYMMDDTHHMMSSffffffZ
    published: bool  # taken right after a run that published (a good copy), not after a failed one

    @property
    def label(self) -> str:
        taken = dt.datetime.strptime(self.taken_at, "%Y%m%dT%H%M%S%fZ")
        return f"{self.path} (taken {taken:%Y-%m-%d %H:%M:%S} UTC, {'after a published run' if self.published else 'after a failed run'})"


def list_copies(warehouse: Path) -> list[Copy]:
    """The kept copies, newest first."""
    folder = copies_dir(warehouse)
    if not folder.is_dir():
        return []
    copies = []
    for path in folder.glob(f"{warehouse.stem}-*.duckdb"):
        parts = path.stem.rsplit("-", 2)
        if len(parts) == 3 and parts[2] in ("published", "failed"):
            copies.append(Copy(path, parts[1], parts[2] == "published"))
    return sorted(copies, key=lambda c: c.taken_at, reverse=True)


def last_good_copy(warehouse: Path) -> Copy | None:
    copies = list_copies(warehouse)
    return next((c for c in copies if c.published), copies[0] if copies else None)


def restore_hint(warehouse: Path) -> str:
    good = last_good_copy(warehouse)
    if good is None:
        return f"no copy of it is kept in {copies_dir(warehouse)}: move the file away and run again (a new warehouse is built from the whole drop)"
    return f"bring back the last good copy with `bhi restore --warehouse {warehouse}` ({good.label})"


def _damaged(warehouse: Path, exc: Exception) -> WarehouseDamagedError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return WarehouseDamagedError(
        f"warehouse {warehouse} cannot be opened, it may be damaged ({first[:200]}).\n"
        f"  Nothing was written; {restore_hint(warehouse)}."
    )


def last_run_published(conn) -> bool:
    """True when the run that last wrote run parameters also published (see pipelines/outputs/publication.py)."""
    tables = {r[0] for r in conn.sql("select table_name from duckdb_tables()").fetchall()}
    if not {"run_parameters", "publications"} <= tables:
        return "run_parameters" not in tables  # an empty warehouse is as good as it gets
    cols = {r[0] for r in conn.sql("describe run_parameters").fetchall()}
    if "run_id" not in cols:
        return False
    return bool(conn.sql(
        "select count(*) from publications where run_id = (select any_value(run_id) from run_parameters)"
    ).fetchall()[0][0])


def copy_file(source: Path, target: Path) -> None:
    """Copy a file the way `cp --reflink=auto` does: `copy_file_range` lets the kernel clone the
    blocks where the file system shares them copy-on-write (XFS with reflink, btrfs: a multi-GB
    warehouse is copied in milliseconds and the copy stays independent of later writes, unlike a
    hard link) and copies them in the kernel elsewhere (ext4: as fast as shutil.copyfile). Falls
    back to shutil.copyfile where copy_file_range is not available (another OS, another device)."""
    try:
        with open(source, "rb") as src, open(target, "wb") as dst:
            left = os.fstat(src.fileno()).st_size
            while left > 0:
                done = os.copy_file_range(src.fileno(), dst.fileno(), left)
                if done == 0:  # the source shrank under us: let shutil copy what is there
                    raise OSError(errno.EIO, "copy_file_range copied nothing")
                left -= done
        return
    except (AttributeError, OSError) as exc:
        if is_disk_full(exc):
            raise
    shutil.copyfile(source, target)


def keep_copy(warehouse: Path, keep: int, connect) -> Copy | None:
    """Open the warehouse (DuckDB's lock and BHI_LOCK_WAIT_SECONDS apply: `connect`), checkpoint it,
    close it and copy the file to <warehouse>.copies/; keep the newest `keep` copies and the newest
    copy taken after a published run. Raises WarehouseDamagedError when DuckDB cannot open the file."""
    import duckdb

    if not warehouse.exists():
        return None
    try:
        conn = connect(str(warehouse))  # a WarehouseLockedError passes through
    except duckdb.Error as exc:
        raise _damaged(warehouse, exc) from exc
    try:
        with disk_errors(warehouse, "checkpointing the warehouse"):
            conn.execute("checkpoint")
            published = last_run_published(conn)
    except duckdb.Error as exc:
        conn.close()
        raise _damaged(warehouse, exc) from exc
    conn.close()
    if keep <= 0:
        return None
    folder = copies_dir(warehouse)
    folder.mkdir(exist_ok=True)
    secure(folder)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{warehouse.stem}-{stamp}-{'published' if published else 'failed'}.duckdb"
    tmp = target.with_name(f".{target.name}.tmp")
    with disk_errors(folder, f"keeping a copy of the warehouse (lower {COPIES_SETTING} in settings.csv to keep fewer)"):
        try:
            copy_file(warehouse, tmp)
            os.chmod(tmp, 0o600)  # copies: owner only, whatever BHI_OUTPUT_MODE says
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    copies = list_copies(warehouse)
    good = next((c for c in copies if c.published), None)
    for old in copies[keep:]:
        if old != good:
            old.path.unlink(missing_ok=True)
    return next(c for c in list_copies(warehouse) if c.path == target)


def restore(warehouse: Path, copy: Path | None = None) -> tuple[Copy, Path | None]:
    """Put a kept copy back as the warehouse (the newest good one unless `copy` names one); the file
    it replaces is kept beside the copies as `<stem>-replaced-<time>.duckdb`. Takes the run lock."""
    copies = list_copies(warehouse)
    if copy is not None:
        chosen = next((c for c in copies if c.path.resolve() == Path(copy).resolve()), None)
        if chosen is None:
            raise OperationalError(f"{copy} is not one of the copies kept in {copies_dir(warehouse)}: see `bhi restore --list`")
    else:
        chosen = last_good_copy(warehouse)
        if chosen is None:
            raise OperationalError(f"no copies of {warehouse} are kept in {copies_dir(warehouse)}: nothing to restore")
    acquire_run_lock(warehouse, "bhi restore")
    try:
        replaced = None
        if warehouse.exists():
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
            replaced = copies_dir(warehouse) / f"{warehouse.stem}-replaced-{stamp}.duckdb"
            os.replace(warehouse, replaced)
        wal = warehouse.with_name(warehouse.name + ".wal")
        if wal.exists():
            os.replace(wal, (replaced or warehouse).with_name((replaced or warehouse).name + ".wal"))
        tmp = warehouse.with_name(f".{warehouse.name}.restore.tmp")
        with disk_errors(warehouse, "restoring the warehouse"):
            copy_file(chosen.path, tmp)
            os.chmod(tmp, output_modes()[0])
            os.replace(tmp, warehouse)
    finally:
        release_run_lock(warehouse)
    return chosen, replaced


# ------------------------------------------------------------------------------------------------
# fault injection (tests only)


_FIRED: set[str] = set()


def fault_point(name: str) -> None:
    """Tests only: when BHI_FAULT_POINT names this point, create the file BHI_FAULT_MARKER and wait
    while it exists (the test kills the process, or deletes the file to let the run go on)."""
    if os.environ.get(FAULT_POINT_ENV) != name or name in _FIRED:
        return
    _FIRED.add(name)  # once per process
    marker = Path(os.environ[FAULT_MARKER_ENV])
    marker.write_text(f"{os.getpid()}\n")
    while marker.exists():
        time.sleep(0.05)
