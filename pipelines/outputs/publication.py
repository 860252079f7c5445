"""The out folder holds the complete outputs of exactly one successful run.

A run writes its exports, dashboards and month-end files into its own folder,
`<out>/.publications/<run id>/`, and publishes it by swapping one symbolic link:

    <out>/.publications/current -> <run id>          replaced atomically (os.replace of a new link)
    <out>/claims.csv -> .publications/current/claims.csv            (one stable link per output name:
    <out>/dashboards -> .publications/current/dashboards             claims.csv, dashboards/, month_end/,
    <out>/manifest.csv -> .publications/current/manifest.csv         manifest.csv, ...)

So a reader of `<out>/claims.csv` sees the previous run's file until the swap and this run's after
it, never a mix, and a run that fails (killed, disk full, a failed check) leaves no file behind in
the outputs: its half-written folder is removed by the next run. The run folder starts as hard
links of the published files (the exports rewrite only what changed, each file by rename, so a
linked file is never written in place) except the dashboards, which are rendered into an empty
folder. `manifest.csv` names the run (run_id, as_of, finished_at on every row). The warehouse file,
its lock and copies stay where they are: they are not outputs.

An output a version no longer writes (RETIRED_OUTPUTS: `claim_evidence/`, the nightly evidence files
before the evidence stayed in the warehouse) is not carried into a new run folder, so the next
publication drops it, its top-level link with it (or the plain folder of an out folder from before
publications): an old evidence file never stays next to the current outputs as if it were current.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
from pathlib import Path

from pipelines.outputs.exports import EXPORTS, MANIFEST, RETIRED_EVIDENCE_DIR
from pipelines.safety import disk_errors, fault_point, secure

PUBLICATIONS = ".publications"
CURRENT = "current"
DASHBOARDS = "dashboards"
MONTH_END = "month_end"
# outputs an out folder from before publications held as plain files and folders (moved in once)
LEGACY_OUTPUTS = (*EXPORTS, MANIFEST, DASHBOARDS, MONTH_END)
# outputs earlier versions published and this one no longer writes: left out of every new run folder
RETIRED_OUTPUTS = (RETIRED_EVIDENCE_DIR,)


def _root(out: Path) -> Path:
    return Path(out) / PUBLICATIONS


def current_folder(out: Path) -> Path | None:
    """The published run's folder, None before the first publication."""
    link = _root(out) / CURRENT
    return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None


def _link_tree(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> None:
    """Copy the folder tree src to dst with hard links (no file content is copied)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(src):
        if entry.name in skip or entry.name.endswith(".tmp"):
            continue
        target = dst / entry.name
        if entry.is_dir(follow_symlinks=False):
            _link_tree(Path(entry.path), target)
        elif entry.is_file(follow_symlinks=False):
            os.link(entry.path, target)
            secure(target)


def staging_folder(out: Path, run_id: str, fresh: tuple[str, ...] = ()) -> Path:
    """This run's output folder, created on first use from the published one (hard links, without
    the top-level names in `fresh` and the retired outputs), or from the plain output files of an out
    folder that has none yet. Idempotent within a run: later steps get the same folder."""
    out = Path(out)
    folder = _root(out) / run_id
    if folder.is_dir():
        return folder
    with disk_errors(folder, "preparing this run's output folder"):
        _root(out).mkdir(parents=True, exist_ok=True)
        secure(out)
        secure(_root(out))
        discard_unpublished(out)  # folders of runs that failed or were killed before publishing
        partial = folder.with_name(f"{run_id}.tmp")
        current = current_folder(out)
        if current is not None:
            _link_tree(current, partial, skip=(*fresh, *RETIRED_OUTPUTS))
        else:
            partial.mkdir()
            for name in LEGACY_OUTPUTS:
                legacy = out / name
                if name in fresh or legacy.is_symlink() or not legacy.exists():
                    continue
                if legacy.is_dir():
                    _link_tree(legacy, partial / name)
                else:
                    os.link(legacy, partial / name)
        os.replace(partial, folder)
    return folder


def fresh_subfolder(staging: Path, name: str) -> Path:
    """An empty `name` folder in the run's folder (emptied if a retried step left one)."""
    path = staging / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir()
    return path


RUN_COLUMNS = ("run_id", "as_of", "finished_at")


def _stamp_manifest(folder: Path, run_id: str, as_of: str | None, finished_at: str) -> None:
    """Name the run on every row of manifest.csv (run_id, as_of, finished_at). The manifest lists
    files (a few dozen rows), not data: read and written with the csv module."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        return
    with manifest.open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        fields = [f for f in (reader.fieldnames or []) if f not in RUN_COLUMNS] + list(RUN_COLUMNS)
    tmp = folder / f"{MANIFEST}.tmp"
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**r, "run_id": run_id, "as_of": as_of or "", "finished_at": finished_at} for r in rows)
    os.replace(tmp, manifest)


def publish(out: Path, run_id: str, as_of: str | None) -> Path:
    """Make this run's folder the published one: stamp its manifest, swap `current` to it (one
    atomic rename), point a stable top-level link at every output name, then remove the folders of
    earlier runs and of runs that failed. Returns the published folder."""
    out = Path(out)
    root = _root(out)
    folder = root / run_id
    with disk_errors(folder, "publishing this run's outputs"):
        finished_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _stamp_manifest(folder, run_id, as_of, finished_at)
        _sync(folder)
        new_link = root / f"{CURRENT}.new"
        new_link.unlink(missing_ok=True)
        os.symlink(run_id, new_link)
        os.replace(new_link, root / CURRENT)  # the publication: one atomic rename
        _sync(root)
        fault_point("publication:after-swap")
        names = {e.name for e in os.scandir(folder)}
        for name in sorted(names):
            _link_output(out, name)
        for entry in os.scandir(out):  # outputs the published run no longer has (e.g. an export removed)
            if entry.is_symlink() and os.readlink(entry.path).startswith(f"{PUBLICATIONS}/{CURRENT}/") \
                    and entry.name not in names:
                os.unlink(entry.path)
        for name in RETIRED_OUTPUTS:  # the plain folder of an out folder from before publications
            if name not in names and (out / name).is_dir() and not (out / name).is_symlink():
                shutil.rmtree(out / name)
        for entry in os.scandir(root):
            if entry.name not in (CURRENT, run_id):
                _remove(Path(entry.path))
    return folder


def _link_output(out: Path, name: str) -> None:
    """out/<name> -> .publications/current/<name>, replacing a plain file or folder of an out folder
    from before publications (its content was linked into the first run folder)."""
    path = out / name
    target = f"{PUBLICATIONS}/{CURRENT}/{name}"
    if path.is_symlink() and os.readlink(path) == target:
        return
    tmp = out / f".{name}.link.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    os.replace(tmp, path)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _sync(folder: Path) -> None:
    """fsync a folder's entries (a published run survives a power cut)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard_unpublished(out: Path) -> None:
    """Remove run folders no run published (left by a run that failed or was killed); called by a run
    holding the warehouse's run lock."""
    root = _root(out)
    if not root.is_dir():
        return
    current = current_folder(out)
    for entry in os.scandir(root):
        path = Path(entry.path)
        if entry.name == CURRENT or (current is not None and path.resolve() == current):
            continue
        _remove(path)

