"""The leadership figures as PNG files for email (plotly's static export through kaleido).

Rendering starts a headless Chromium (~4 s a run), so a figure is rendered only when what it shows
changed: `digests.json` beside the PNGs keeps, per file, a digest of the figure as drawn (its data,
layout and caption) with the as-of date left out of the caption, and the as-of date of the run that
rendered it. A PNG whose digest is unchanged is kept as it is (a hard link of the published file),
so its caption still names the as-of date of the run that computed its numbers: true, since the
numbers are the same today (docs/operations.md, "PNG for email"). The open month is part of the
digest, so the first run of a month (the one that closes the previous month) renders them all."""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from dashboards import figures, marts
from dashboards.theme import fmt_date, fmt_dollars, fmt_pct

PNG_DIR = "email"  # leadership figures as PNG, under the site folder
DIGESTS = "digests.json"  # per PNG: the digest of what it shows and the as-of date it was rendered on


def png_subtitle(health: Mapping[str, Any], headlines: Mapping[str, Any], *, dated: bool = True) -> str:
    """The line under each leadership PNG's title (fct_run_health, rpt_dashboard_headlines): as-of
    date, closed-month net and ROI, revenue left on the table, and a warning when the extract is
    stale or a month is incomplete. dated=False: without the as-of date (what the digest reads)."""
    r, h = health, headlines
    text = (f"net, closed months {fmt_dollars(h.get('roi_closed_net'))}"
            f" (ROI {fmt_pct(h.get('roi_closed_pct'))}) · left on the table "
            f"{fmt_dollars(h.get('gap_dollars'))}")
    if dated:
        text = f"Data as of {fmt_date(r.get('as_of'))} · {text}"
    if r.get("is_stale"):
        text += " · STALE EXTRACT"
    if r.get("incomplete_month_list"):
        text += f" · incomplete: {r['incomplete_month_list']}"
    return html.escape(text)


@dataclass
class LeadershipPngs:
    """The PNG files (figures.LEADERSHIP_FIGURES order), which were rendered by this call and which
    were kept from `previous` (file name -> the as-of date in its caption)."""

    paths: list[Path]
    rendered: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)

    def note(self) -> str:
        """One line for the run's metadata: the files rendered, and those kept with their caption's date."""
        parts = [f"rendered {', '.join(self.rendered)}"] if self.rendered else []
        if self.kept:
            parts.append("kept, figure unchanged: " + ", ".join(f"{n} (as of {d})" for n, d in self.kept.items()))
        return "; ".join(parts)


def _read_digests(folder: Path | None) -> dict[str, dict]:
    if folder is None or not (folder / DIGESTS).is_file():
        return {}
    try:
        found = json.loads((folder / DIGESTS).read_text())
    except (OSError, ValueError):  # unreadable: every PNG is rendered again
        return {}
    return found if isinstance(found, dict) else {}


def write_leadership_pngs(
    conn: duckdb.DuckDBPyConnection,
    out_dir: str | os.PathLike[str],
    *,
    previous: str | os.PathLike[str] | None = None,
    width: int = 1100,
    scale: float = 2.0,
) -> LeadershipPngs:
    """Export the leadership figures (figures.LEADERSHIP_FIGURES) as PNG files for email, with
    `digests.json` beside them. A figure whose digest equals the one recorded in `previous` (the
    folder of the PNGs written before; may be `out_dir` itself) is kept from there, hard-linked
    into `out_dir`, not rendered.

    Uses plotly's static export (kaleido 1.x), which drives a Chromium-family browser: kaleido
    finds one on PATH (Debian's /usr/bin/chromium) or where the BROWSER_PATH environment variable
    points. Raises RuntimeError (with kaleido's message) when kaleido or a browser is missing;
    nothing is written then. Files are written next to their target and renamed into place.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    before = Path(previous) if previous is not None else None
    recorded = _read_digests(before)
    data = marts.pngs(conn)
    as_of = fmt_date(data["health"].get("as_of"))
    open_month = as_of[:7]
    undated = png_subtitle(data["health"], data["headlines"], dated=False)
    subtitle = png_subtitle(data["health"], data["headlines"])
    result = LeadershipPngs(paths=[])
    digests: dict[str, dict] = {}
    to_render: list[tuple[Any, Path]] = []
    for stem, builder, table in figures.LEADERSHIP_FIGURES:
        takes_incomplete = "incomplete" in builder.__code__.co_varnames[:builder.__code__.co_argcount]
        frame = marts.frame(conn, f"select * from {table}")
        fig = builder(frame, data["incomplete"]) if takes_incomplete else builder(frame)
        # the as-of date and the headline numbers under the title; the legend on the right, clear of
        # the title (a horizontal legend above the plot wraps into the title on long legends)
        fig.update_layout(
            title=dict(x=0.015, y=0.97, yanchor="top", subtitle=dict(text=undated)),
            legend=dict(orientation="v", x=1.02, xanchor="left", y=1.0, yanchor="top"),
            margin=dict(l=80, r=30, t=100),
        )
        # what the PNG shows but its as-of date: the figure as drawn, the open month, the size
        digest = hashlib.sha256(json.dumps([fig.to_json(), open_month, width, scale]).encode()).hexdigest()
        fig.update_layout(title_subtitle_text=subtitle)
        name = f"{stem}.png"
        target = out / name
        result.paths.append(target)
        old = recorded.get(name) or {}
        if before is not None and old.get("digest") == digest and (before / name).is_file():
            if (before / name).resolve() != target.resolve():
                _link_or_copy(before / name, target)
            result.kept[name] = old.get("as_of", "")
            digests[name] = {"digest": digest, "as_of": result.kept[name]}
        else:
            to_render.append((fig, target))
            digests[name] = {"digest": digest, "as_of": as_of}
    if to_render:
        try:
            _render(to_render, width, scale)
        except RuntimeError:
            for name in result.kept:  # nothing is written: the kept files are not left on their own
                if (before / name).resolve() != (out / name).resolve():
                    (out / name).unlink(missing_ok=True)
            raise
        result.rendered = [target.name for _, target in to_render]
    tmp = out / f".{DIGESTS}.tmp"
    tmp.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, out / DIGESTS)
    return result


def _link_or_copy(src: Path, target: Path) -> None:
    """`target` becomes the same file as `src` (a hard link; a copy across file systems)."""
    target.unlink(missing_ok=True)
    try:
        os.link(src, target)
    except OSError:
        shutil.copy2(src, target)


NO_BROWSER = (
    "kaleido drives a Chromium browser: install Debian's chromium (apt-get install chromium;"
    " scripts/ensure-chromium.sh) or set BROWSER_PATH to one"
)


def _why(exc: BaseException) -> str:
    """Why the export failed, never empty: the first message in the exception's chain (a timeout or a
    closed browser carry none), and what kaleido needs when the browser is missing or did not answer."""
    seen: BaseException | None = exc
    text = ""
    while seen is not None and not text:
        text = str(seen).strip().splitlines()[0] if str(seen).strip() else ""
        seen = seen.__cause__ or seen.__context__
    if not text:
        return f"the browser did not answer or could not start; {NO_BROWSER}"
    if "browser not found" in text.lower() or "chrome" in text.lower():
        return f"no usable Chromium browser ({text[:120]}); {NO_BROWSER}"
    return text


def _render(figs: list[tuple[Any, Path]], width: int, scale: float) -> None:
    """Write each figure to its PNG through kaleido (one browser for all), each renamed into place."""
    try:
        import kaleido  # noqa: F401  (plotly imports it lazily; fail early with a clear message)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("PNG export needs the kaleido package (pip install 'kaleido>=1')") from exc
    import plotly.io as pio

    tmps = [target.with_name(f".{target.stem}.tmp.png") for _, target in figs]
    try:
        pio.write_images([fig for fig, _ in figs], tmps, format="png", width=width, scale=scale)
    except Exception as exc:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise RuntimeError(f"PNG export failed: {_why(exc)}") from exc
    for tmp, (_, target) in zip(tmps, figs):
        os.replace(tmp, target)
