"""The pages people work from, in real Chromium (Playwright, marker `browser`): the site of the
session's `bhi run` of the bundled sample (real marts, drill-down pages) and the hand-built warehouse
of tests/test_dashboards.py (a rejected September). One browser and one page per module; each test
reads the already rendered sites.

- every patient the worklist lists is found by typing their name in the filter; "consent" finds
  every patient blocked by consent;
- the filter and the care-manager choice apply to every table of the worklist page;
- no column of any table is cut off at 1440 px (a table never needs its scroll box sideways);
- at 390 px the worklist is a card per patient;
- every row of every patient table links to a drill-down page that exists;
- one colour per concept: the stylesheet's --c-* variables are the same on every page, each concept
  has its own colour, and every chart trace and card of a concept is drawn in it;
- a month with a rejected file is a gap with its reason on the overview and ROI charts, never 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_dashboards import CHROMIUM, PAGES, build_warehouse, render

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
# the tables whose rows are patient-months (each row links to its drill-down page)
PATIENT_TABLES = {"worklist.html": ("#worklist", "#not-improving-table"),
                  "outreach.html": ("table[id^=plan-]",),
                  "revenue_gap.html": ("#top-patient-months",)}


@pytest.fixture(scope="module")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests but /usr/bin/chromium is missing")
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def sample_site(sample_run) -> Path:
    return sample_run[0] / "dashboards"


@pytest.fixture(scope="module")
def rejected_site(tmp_path_factory) -> Path:
    """The hand-built warehouse of test_dashboards.py: September's time entries were rejected."""
    folder = tmp_path_factory.mktemp("rejected")
    return render(build_warehouse(folder / "w.duckdb"), folder / "site").parent


@pytest.fixture(scope="module")
def desktop(chromium):
    ctx = chromium.new_context(offline=True, viewport=DESKTOP)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    ctx.close()
    assert errors == []


def _open(page, path: Path) -> None:
    page.goto(path.as_uri())
    charts = page.locator(".figure").count()
    if charts:
        page.wait_for_function(f"document.querySelectorAll('.figure .js-plotly-plot .main-svg').length >= {charts}")


def test_every_listed_patient_is_found_by_name_and_consent_finds_the_blocked(desktop, sample_site: Path):
    _open(desktop, sample_site / "worklist.html")
    total = desktop.locator("#worklist tbody tr").count()
    assert total == 287  # every enrolled patient-program of the sample's open month
    missed = desktop.evaluate("""() => {
        const input = document.getElementById('filter');
        const rows = Array.from(document.querySelectorAll('#worklist tbody tr'));
        const missed = [];
        rows.forEach(tr => {
            const name = tr.querySelector('td.patient').textContent.trim();
            input.value = name; input.dispatchEvent(new Event('input'));
            if (tr.hidden || !/[a-z]/i.test(name) || /^P\\d+$/.test(name)) missed.push(name);
        });
        input.value = ''; input.dispatchEvent(new Event('input'));
        return missed;
    }""")
    assert missed == []
    desktop.fill("#filter", "consent")
    shown = desktop.locator("#worklist tbody tr:visible")
    blocked = desktop.locator("#worklist tbody tr", has_text="blocked by consent")
    assert shown.count() >= blocked.count() == 16  # all 16 patients missing consent
    # a blocked patient shows the minutes logged and why they do not count
    assert "106 logged, 106 excluded" in desktop.locator("#worklist tbody tr", has_text="SYNTHETIC0213").inner_text()
    desktop.fill("#filter", "")


def test_filter_and_care_manager_apply_to_every_table(desktop, sample_site: Path):
    _open(desktop, sample_site / "worklist.html")
    tables = desktop.evaluate("Array.from(document.querySelectorAll('table.filterable')).map(t => t.id)")
    assert tables == ["worklist", "not-improving-table"]
    options = desktop.evaluate("Array.from(document.querySelectorAll('#cm-filter option')).map(o => o.value)"
                               ".filter(Boolean)")
    assert len(options) >= 2
    for cm in options[:3]:
        desktop.select_option("#cm-filter", cm)
        for table in tables:
            rows = desktop.evaluate(f"Array.from(document.querySelectorAll('#{table} tbody tr'))"
                                    ".map(tr => [tr.getAttribute('data-cm'), !tr.hidden])")
            assert all(visible == (row_cm == cm) for row_cm, visible in rows), (cm, table)
    desktop.select_option("#cm-filter", "")
    # the filter box too: a word only the not-improving table has (its scale) empties the worklist
    desktop.fill("#filter", "PHQ9")
    assert desktop.locator("#worklist tbody tr:visible").count() == 0
    assert desktop.locator("#not-improving-table tbody tr:visible").count() > 0
    desktop.fill("#filter", "")


_FACTS_JS = """() => {
    const clipped = Array.from(document.querySelectorAll('.table-wrap'))
        .filter(w => w.scrollWidth > w.clientWidth + 1)
        .map(w => (w.querySelector('table') || {}).id + ' ' + w.scrollWidth + '>' + w.clientWidth);
    const root = getComputedStyle(document.documentElement);
    const vars = {}, written = {};
    for (const sheet of document.styleSheets) for (const rule of sheet.cssRules)
        if (rule.selectorText === ':root') for (const p of rule.style)
            if (p.startsWith('--c-')) {
                vars[p.slice(4)] = root.getPropertyValue(p).trim().toUpperCase();
                written[p.slice(4)] = rule.style.getPropertyValue(p).trim().toUpperCase();
            }
    const traces = [];
    document.querySelectorAll('.js-plotly-plot').forEach(gd => (gd.data || []).forEach(t => {
        if (!t.meta) return;
        const c = (t.marker && typeof t.marker.color === 'string' && t.marker.color !== 'white')
            ? t.marker.color : (t.marker && t.marker.line && t.marker.line.color) || (t.line && t.line.color);
        traces.push([t.meta, String(c).toUpperCase(), t.name]);
    }));
    const cards = Array.from(document.querySelectorAll('.card[class*="c-"] .value')).map(v =>
        [Array.from(v.parentElement.classList).find(c => c.startsWith('c-')).slice(2), getComputedStyle(v).color]);
    return {clipped, vars, written, traces, cards};
}"""


@pytest.fixture(scope="module")
def facts(desktop, sample_site: Path, rejected_site: Path) -> dict[str, dict]:
    """Every page of both sites opened once at 1440 px: clipped tables, the stylesheet's colours, the
    colour of every chart trace and card that names its concept."""
    found = {}
    for label, site in (("sample", sample_site), ("rejected", rejected_site)):
        for name in PAGES:
            _open(desktop, site / name)
            found[f"{label}/{name}"] = desktop.evaluate(_FACTS_JS)
    return found


def test_no_column_is_cut_off_at_1440_px(facts, desktop, sample_site: Path):
    assert {page: f["clipped"] for page, f in facts.items() if f["clipped"]} == {}
    _open(desktop, sample_site / "worklist.html")
    heads = desktop.evaluate("Array.from(document.querySelectorAll('#worklist th')).map(th => th.textContent)")
    assert "Payer" in heads and "Days left" in heads


def test_worklist_is_a_card_per_patient_at_390_px(chromium, sample_site: Path):
    ctx = chromium.new_context(offline=True, viewport=PHONE)
    page = ctx.new_page()
    try:
        _open(page, sample_site / "worklist.html")
        assert not page.locator("#worklist thead").is_visible()
        cards = page.evaluate("""() => Array.from(document.querySelectorAll('#worklist tbody tr')).slice(0, 20).map(tr => {
            const r = tr.getBoundingClientRect();
            const label = getComputedStyle(tr.cells[1], '::before').content;
            return [getComputedStyle(tr).display, r.left >= 0 && r.right <= 390, label];
        })""")
        assert cards and all(display == "block" and inside for display, inside, _ in cards)
        assert all(label == '"State"' for _, _, label in cards)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        ctx.close()


def test_every_patient_row_links_to_its_drill_down_page(desktop, sample_site: Path):
    for name, selectors in PATIENT_TABLES.items():
        _open(desktop, sample_site / name)
        for selector in selectors:
            rows = desktop.evaluate(f"""() => Array.from(document.querySelectorAll('{selector} tbody tr'))
                .map(tr => {{ const a = tr.querySelector('a.drill'); return a ? a.getAttribute('href') : null; }})""")
            assert rows, (name, selector)
            assert None not in rows, (name, selector)
            assert all((sample_site / href).is_file() for href in rows), (name, selector)
    _open(desktop, sample_site / "revenue_gap.html")
    assert "of 339 patient-months" in desktop.locator("#top-note").inner_text()


def test_one_colour_per_concept_on_every_page(facts):
    for page, found in facts.items():
        for concept, colour, trace in found["traces"]:
            assert colour == found["vars"][concept], (page, trace, concept, colour)
        for concept, colour in found["cards"]:
            hexa = found["vars"][concept]
            assert colour == "rgb({}, {}, {})".format(*(int(hexa[i:i + 2], 16) for i in (1, 3, 5))), (page, concept)
    assert sum(len(f["traces"]) for f in facts.values()) > 30 and sum(len(f["cards"]) for f in facts.values()) > 5
    written = [f["written"] for f in facts.values()]
    assert all(w == written[0] for w in written)  # one stylesheet: the same colours on every page
    # no colour means two concepts (an alias, var(--c-...), is the same concept under a second name)
    literal = {k: v for k, v in written[0].items() if v.startswith("#")}
    assert len(set(literal.values())) == len(literal), literal
    assert len(literal) >= 20


def test_a_rejected_month_is_a_gap_with_its_reason(desktop, rejected_site: Path):
    for name in ("index.html", "roi.html"):
        _open(desktop, rejected_site / name)
        gap = desktop.evaluate("""() => {
            const gd = document.querySelector('.figure .js-plotly-plot');
            const label = '2026-09 (incomplete data)';
            const drawn = gd.data.filter(t => (t.x || []).includes(label))
                .map(t => [t.name, t.y[t.x.indexOf(label)]]);
            const notes = (gd.layout.annotations || []).map(a => a.text).join(' ');
            return {drawn, notes};
        }""")
        assert gap["drawn"] and all(value is None for _, value in gap["drawn"]), (name, gap)
        assert "rejected file" in gap["notes"], name
