"""Dashboards: figure builders and the static site, on a tiny hand-written warehouse.

The warehouse is a temporary DuckDB *file* holding the five mart tables with the exact
column types of the marts; no pipeline code is needed.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
import os
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dashboards import figures, site, theme

D = dt.date
EVIL = "<script>alert(1)</script>"
EVIL_PATIENT = f"PAT-EVIL{EVIL}"
PAGES = ("index.html", "worklist.html", "revenue_gap.html", "roi.html")

# --------------------------------------------------------------------------- fixture builders

DDL = {
    "fct_run_summary": """
        as_of date, open_month date, entries_ingested bigint, rows_quarantined bigint,
        minutes_ingested bigint, minutes_counted bigint, minutes_excluded bigint,
        claim_lines bigint, expected_revenue double, revenue_left_on_table double""",
    "fct_near_threshold": """
        facility_id varchar, patient_id varchar, payer_id varchar, program varchar,
        care_manager_id varchar, countable_minutes integer, current_codes varchar,
        current_amount double, next_code varchar, next_threshold_minutes integer,
        minutes_needed integer, days_left integer, dollars_gained double, blockers varchar""",
    "fct_revenue_gap": """
        facility_id varchar, patient_id varchar, payer_id varchar, program varchar,
        service_month date, reason varchar, minutes integer, dollars double""",
    "fct_program_roi": """
        facility_id varchar, service_month date, month_status varchar, expected_revenue double,
        claim_lines bigint, patients_billed bigint, patient_months_enrolled bigint,
        care_manager_cost double, other_cost double, total_cost double, net double,
        cumulative_net double, roi_pct double""",
}

SUMMARY = [(D(2026, 10, 20), D(2026, 10, 1), 1234, 7, 56789, 50000, 6000, 321, 45678.9, 9876.5)]

NEAR = [
    # facility, patient, payer, program, cm, minutes, current, amount, next, next_at,
    # needed, days_left, gained, blockers
    ("FAC-A", "PAT-0001", "MCR", "cocm", "CM-1", 62, "", 0.0, "99492", 70, 8, 11, 160.0, ""),
    ("FAC-A", EVIL_PATIENT, "MCR", "cocm", f"CM-{EVIL}", 40, "99493", 130.0, "99494", 60, 20,
     11, 65.0, "missing consent"),
    ("FAC-A", "PAT-0003", "COM", "bhi", None, 12, "", 0.0, "99484", 20, 8, 11, 45.5,
     "missing consent; no psychiatric review yet"),
    ("FAC-B", "PAT-0004", "MCD", "cocm", "CM-2", 95, "99492 + 99494 x1", 230.0, None, None,
     None, 11, None, ""),
    ("FAC-B", "PAT-0005", "MCD", "cocm", "CM-2", 50, "99493", 140.0, "99494", 60, 10, 11, 66.0,
     ""),
]

GAP = [
    ("FAC-A", "PAT-0001", "MCR", "cocm", D(2026, 8, 1), "near_miss", 65, 150.0),
    ("FAC-A", "PAT-0001", "MCR", "cocm", D(2026, 8, 1), "missing_psych_review", 70, 80.0),
    ("FAC-A", EVIL_PATIENT, "MCR", "cocm", D(2026, 8, 1), "missing_consent", 30, 120.25),
    ("FAC-B", "PAT-0004", "MCD", "bhi", D(2026, 9, 1), "time_before_consent", 15, 40.0),
    ("FAC-B", "PAT-0005", "MCD", "cocm", D(2026, 9, 1), "near_miss", 55, 150.0),
    ("FAC-B", "PAT-0005", "MCD", "cocm", D(2026, 9, 1), "over_add_on_cap", 45, 60.0),
]

ROI = [
    # facility, month, status, revenue, lines, billed, enrolled, cm cost, other, total,
    # net, cum net, roi%
    ("FAC-A", D(2026, 8, 1), "closed", 5000.0, 40, 30, 35, 4000.0, 500.0, 4500.0, 500.0,
     500.0, 11.1),
    ("FAC-A", D(2026, 9, 1), "closed", 5200.0, 42, 31, 36, 4000.0, 500.0, 4500.0, 700.0,
     1200.0, 15.6),
    ("FAC-A", D(2026, 10, 1), "open", 2000.0, 15, 12, 36, 4000.0, 500.0, 4500.0, -2500.0,
     -1300.0, -55.6),
    ("FAC-B", D(2026, 9, 1), "closed", 3000.0, 25, 20, 24, 3500.0, 300.0, 3800.0, -800.0,
     -800.0, -21.1),
    ("FAC-B", D(2026, 10, 1), "open", 1000.0, 8, 6, 24, 3500.0, 300.0, 3800.0, -2800.0,
     -3600.0, None),
]
ROWS = {
    "fct_run_summary": SUMMARY,
    "fct_near_threshold": NEAR,
    "fct_revenue_gap": GAP,
    "fct_program_roi": ROI,
}


def build_warehouse(path: Path, rows: dict[str, list[tuple]] | None = None) -> Path:
    """Create the four mart tables (exact types) in a DuckDB file and insert `rows`."""
    rows = ROWS if rows is None else rows
    conn = duckdb.connect(str(path))
    try:
        for table, columns in DDL.items():
            conn.execute(f"create or replace table {table} ({columns})")
            data = rows.get(table, [])
            if data:
                marks = ", ".join("?" * len(data[0]))
                conn.executemany(f"insert into {table} values ({marks})", data)
    finally:
        conn.close()
    return path


def render(db_path: Path, out_dir: Path, **kwargs) -> Path:
    conn = duckdb.connect(str(db_path), read_only=True)
    try:
        return site.render_site(conn, out_dir, **kwargs)
    finally:
        conn.close()


def read_table(table: str, rows: list[tuple]) -> pl.DataFrame:
    """Typed polars frame for one mart, going through DuckDB so dtypes match the real read."""
    conn = duckdb.connect()
    try:
        conn.execute(f"create table {table} ({DDL[table]})")
        if rows:
            conn.executemany(f"insert into {table} values ({', '.join('?' * len(rows[0]))})", rows)
        return conn.sql(f"select * from {table}").pl()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dash")
    db = build_warehouse(root / "w.duckdb")
    index = render(db, root / "site")
    return index.parent


def page(site_dir: Path, name: str) -> str:
    return (site_dir / name).read_text(encoding="utf-8")


def tbody_rows(html_text: str, table_id: str) -> list[str]:
    m = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', html_text, re.S)
    assert m, f"table {table_id} not found"
    return re.findall(r"<tr[ >].*?</tr>", m.group(1), re.S)


# --------------------------------------------------------------------------- the site


def test_render_site_writes_pages_and_one_plotly_js(built_site: Path):
    assert (built_site / "index.html").is_file()
    for name in (*PAGES, "plotly.min.js"):
        assert (built_site / name).stat().st_size > 0, name
    assert sorted(p.name for p in built_site.iterdir()) == sorted((*PAGES, "plotly.min.js"))
    assert "plotly" in (built_site / "plotly.min.js").read_text(encoding="utf-8")[:2000].lower()


@pytest.mark.parametrize("name", PAGES)
def test_pages_load_plotly_locally_and_nothing_remote(built_site: Path, name: str):
    text = page(built_site, name)
    assert '<script src="plotly.min.js"></script>' in text
    assert "cdn" not in text.lower()
    srcs = re.findall(r"<script[^>]*\bsrc\s*=\s*[\"']?([^\"' >]+)", text, re.I)
    assert srcs == ["plotly.min.js"]
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=\s*[\"']?(https?:)?//",
                         text, re.I)


def test_index_shows_headline_numbers_and_links(built_site: Path):
    text = page(built_site, "index.html")
    for expected in ("2026-10-20", "2026-10", "1,234", "321", "$45,679", "$9,877"):
        assert expected in text
    for link in ("worklist.html", "revenue_gap.html", "roi.html"):
        assert f'href="{link}"' in text


def test_patient_id_is_escaped_on_every_page(built_site: Path):
    worklist = page(built_site, "worklist.html")
    assert "PAT-EVIL&lt;script&gt;alert(1)&lt;/script&gt;" in worklist
    for name in PAGES:
        assert EVIL not in page(built_site, name), name
    assert "PAT-EVIL&lt;script&gt;" in page(built_site, "revenue_gap.html")


def test_roi_page_has_no_patient_identifiers(built_site: Path):
    text = page(built_site, "roi.html")
    patient_ids = {r[1] for r in NEAR} | {r[1] for r in GAP}
    for pid in patient_ids:
        assert pid not in text
        assert pid.split("<")[0] not in text  # also not the escaped form
    assert "PAT-" not in text


def test_worklist_sorted_by_dollars_with_filter_box(built_site: Path):
    text = page(built_site, "worklist.html")
    assert 'id="filter"' in text and "#worklist tbody tr" in text
    rows = tbody_rows(text, "worklist")
    assert len(rows) == len(NEAR)
    order = [re.findall(r"PAT-\d{4}|PAT-EVIL", r)[0] for r in rows]
    # 160, 66, 65 (evil), 45.5, then the row with nothing reachable last
    assert order == ["PAT-0001", "PAT-0005", "PAT-EVIL", "PAT-0003", "PAT-0004"]
    assert "Showing all 5 rows" in text
    assert "../near_threshold.csv" in text
    assert "Unassigned" in text  # null care manager
    assert 'class="blocked"' in text


def test_worklist_caps_at_500_rows(tmp_path: Path):
    near = [
        ("FAC-A", f"PAT-{i:04d}", "MCR", "cocm", f"CM-{i % 7}", 30, "", 0.0, "99492", 70,
         40, 11, float(i), "")
        for i in range(1, 601)
    ]
    db = build_warehouse(tmp_path / "w.duckdb", {**ROWS, "fct_near_threshold": near})
    render(db, tmp_path / "site")
    text = page(tmp_path / "site", "worklist.html")
    rows = tbody_rows(text, "worklist")
    assert len(rows) == 500
    assert "Showing top 500 of 600 rows" in text
    assert 'href="../near_threshold.csv"' in text
    assert "PAT-0600" in rows[0]  # most dollars first
    assert "PAT-0101" in rows[-1]
    assert "PAT-0100<" not in text  # below the cut


def test_revenue_gap_page_tables(built_site: Path):
    text = page(built_site, "revenue_gap.html")
    by_reason = tbody_rows(text, "by-reason")
    assert len(by_reason) == 5 + 1  # five reasons + total
    assert "$600" in by_reason[-1]  # 150+80+120.25+40+150+60 = 600.25
    top = tbody_rows(text, "top-patient-months")
    assert len(top) == 4  # patient-months, not reason rows
    assert "PAT-0001" in top[0] and "$230" in top[0]  # 150 + 80 beats 210 and 120.25
    assert "Showing top 4 of 4 patient-months" in text


def test_revenue_gap_table_limited_to_50(tmp_path: Path):
    gap = [
        ("FAC-A", f"PAT-{i:04d}", "MCR", "cocm", D(2026, 9, 1), "near_miss", 10, float(i))
        for i in range(1, 71)
    ]
    db = build_warehouse(tmp_path / "w.duckdb", {**ROWS, "fct_revenue_gap": gap})
    render(db, tmp_path / "site")
    text = page(tmp_path / "site", "revenue_gap.html")
    assert len(tbody_rows(text, "top-patient-months")) == 50
    assert "Showing top 50 of 70 patient-months" in text


def test_roi_page_facility_table(built_site: Path):
    text = page(built_site, "roi.html")
    rows = tbody_rows(text, "facility-roi")
    assert len(rows) == 3  # FAC-A, FAC-B, total
    assert "FAC-A" in rows[0] and "$10,200" in rows[0] and "$1,200" in rows[0]
    assert "FAC-B" in rows[1] and "-$800" in rows[1] and "-21.1%" in rows[1]
    assert "All facilities" in rows[2] and "$13,200" in rows[2] and "$400" in rows[2]


def test_empty_marts_render_no_rows_pages(tmp_path: Path):
    db = build_warehouse(tmp_path / "w.duckdb", {})
    index = render(db, tmp_path / "site")
    assert index == tmp_path / "site" / "index.html"
    assert "No pipeline run summary yet" in page(index.parent, "index.html")
    for name in ("worklist.html", "revenue_gap.html", "roi.html"):
        assert "No rows" in page(index.parent, name), name


def test_only_open_month_roi_has_no_closed_table(tmp_path: Path):
    db = build_warehouse(
        tmp_path / "w.duckdb", {**ROWS, "fct_program_roi": [r for r in ROI if r[2] == "open"]}
    )
    render(db, tmp_path / "site")
    assert "No closed months yet" in page(tmp_path / "site", "roi.html")


def test_render_site_is_repeatable(tmp_path: Path):
    db = build_warehouse(tmp_path / "w.duckdb")
    render(db, tmp_path / "a")
    render(db, tmp_path / "b")
    render(db, tmp_path / "b")  # overwrite in place
    for name in PAGES:
        assert page(tmp_path / "a", name) == page(tmp_path / "b", name)
    assert not list((tmp_path / "b").glob(".*.tmp"))


# --------------------------------------------------------------------------- figures


def test_revenue_gap_figure_stacks_to_input_dollars():
    gap = read_table("fct_revenue_gap", GAP)
    fig = figures.revenue_gap_by_month_and_reason(gap)
    assert fig.layout.barmode == "stack"
    assert len(fig.data) == 5  # one trace per reason
    assert all(t.type == "bar" for t in fig.data)
    assert sum(sum(t.y) for t in fig.data) == pytest.approx(sum(r[7] for r in GAP))
    assert list(fig.data[0].x) == ["2026-08", "2026-09"]
    per_month = [sum(t.y[i] for t in fig.data) for i in range(2)]
    assert per_month == pytest.approx([350.25, 250.0])
    # biggest reason first (bottom of the stack), human labels
    assert fig.data[0].name == figures.REASON_LABELS["near_miss"]
    assert "month and reason" in fig.layout.title.text


def test_revenue_gap_figure_unknown_reason_and_null_dollars():
    gap = read_table(
        "fct_revenue_gap",
        [("F", "P", "X", "cocm", D(2026, 9, 1), "brand_new_reason", 5, None),
         ("F", "P", "X", "cocm", D(2026, 9, 1), "near_miss", 5, 12.0)],
    )
    fig = figures.revenue_gap_by_month_and_reason(gap)
    assert {t.name for t in fig.data} == {"brand_new_reason", figures.REASON_LABELS["near_miss"]}
    assert sum(sum(t.y) for t in fig.data) == pytest.approx(12.0)


def test_care_manager_figure_sums_reachable_dollars():
    fig = figures.dollars_at_stake_by_care_manager(read_table("fct_near_threshold", NEAR))
    assert len(fig.data) == 1
    bar = fig.data[0]
    got = dict(zip(bar.y, bar.x))
    assert got == {"CM-1": 160.0, f"CM-{EVIL}": 65.0, figures.UNASSIGNED: 45.5, "CM-2": 66.0}
    assert list(bar.y)[-1] == "CM-1"  # largest drawn at the top of a horizontal bar chart


def test_roi_figure_sums_facilities_and_accumulates_net():
    fig = figures.program_roi_by_month(read_table("fct_program_roi", ROI))
    assert [t.type for t in fig.data] == ["bar", "bar", "scatter", "scatter"]
    revenue, cost, net, cum = fig.data
    assert list(revenue.x) == ["2026-08", "2026-09", "2026-10 (month to date)"]
    assert list(revenue.y) == pytest.approx([5000.0, 8200.0, 3000.0])
    assert list(cost.y) == pytest.approx([4500.0, 8300.0, 8300.0])
    assert list(net.y) == pytest.approx([500.0, -100.0, -5300.0])
    assert list(cum.y) == pytest.approx([500.0, 400.0, -4900.0])


@pytest.mark.parametrize(
    ("builder", "table"),
    [
        (figures.revenue_gap_by_month_and_reason, "fct_revenue_gap"),
        (figures.dollars_at_stake_by_care_manager, "fct_near_threshold"),
        (figures.program_roi_by_month, "fct_program_roi"),
    ],
)
def test_figures_accept_empty_frames(builder, table):
    fig = builder(read_table(table, []))
    assert len(fig.data) == 0
    assert fig.layout.annotations and fig.layout.title.text


def test_care_manager_figure_with_nothing_reachable():
    rows = [r for r in NEAR if r[12] is None]
    fig = figures.dollars_at_stake_by_care_manager(read_table("fct_near_threshold", rows))
    assert len(fig.data) == 0


# --------------------------------------------------------------------------- theme & purity


def test_formatters():
    assert theme.fmt_dollars(1234.4) == "$1,234"
    assert theme.fmt_dollars(-80) == "-$80"
    assert theme.fmt_dollars(-0.2) == "$0"
    assert theme.fmt_dollars(12.5, cents=True) == "$12.50"
    assert theme.fmt_dollars(None) == "—"
    assert theme.fmt_minutes(1234) == "1,234 min"
    assert theme.fmt_minutes(None) == "—"
    assert theme.fmt_pct(12.345) == "12.3%"
    assert theme.fmt_month(D(2026, 3, 1)) == "2026-03"


def test_figures_use_the_theme():
    fig = figures.program_roi_by_month(read_table("fct_program_roi", ROI))
    assert fig.layout.template.layout.font.family == theme.FONT_STACK
    assert fig.layout.height


def test_dashboards_package_has_no_dagster_imports():
    pkg = Path(figures.__file__).parent
    for path in pkg.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0].startswith("dagster") for n in names), path


# --------------------------------------------------------------------------- in a real browser

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
def test_site_renders_offline_from_file_urls(built_site: Path):
    """Charts draw with the network off (file://, local plotly.min.js); the filter hides rows."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        if os.environ.get("CI"):  # CI installs chromium (scripts/ensure-chromium.sh): never skip there
            pytest.fail("CI must run the browser tests but /usr/bin/chromium is missing")
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            ctx = browser.new_context(offline=True, viewport={"width": 1366, "height": 900})
            pg = ctx.new_page()
            errors: list[str] = []
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
            for name, charts in (("index.html", 0), ("worklist.html", 1),
                                 ("revenue_gap.html", 1), ("roi.html", 1)):
                pg.goto((built_site / name).as_uri())
                assert pg.evaluate("typeof Plotly") == "object", name
                pg.wait_for_function(
                    f"document.querySelectorAll('.js-plotly-plot').length === {charts}"
                )
            pg.goto((built_site / "worklist.html").as_uri())
            assert pg.locator("#filter-count").text_content() == "5 of 5 rows shown"
            pg.fill("#filter", "CM-2")
            assert pg.locator("#worklist tbody tr:visible").count() == 2
            pg.fill("#filter", "missing consent")
            assert pg.locator("#worklist tbody tr:visible").count() == 2
            pg.fill("#filter", "")
            assert pg.locator("#worklist tbody tr:visible").count() == 5
            assert errors == []
        finally:
            browser.close()
