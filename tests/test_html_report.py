"""`carscore report`: one self-contained HTML file (contract section 7).

The report is parsed with the standard library's html.parser and checked for
its sections (cohort, swimmer plot, one per course, rule sets, problems), for
naming no URL outside itself (no script, no stylesheet or font fetched, no
http:, https: or //host in src, href or url()), for alt text on every figure,
for ids that resolve within the page, for escaping what comes from the data,
and for "not assessable" kept distinct from grade 0. The command is run as a
user runs it for its exit codes. The browser test is test_report_browser.py.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import write_rows

import carscore
from carscore.assess import assess_paths, load_engine
from carscore.cohort import cohort_of
from carscore.htmlreport import build_report
from carscore.htmlreport.svgmarkup import SharedMarkup, inline_svg
from carscore.presentation import rate_views, shown
from carscore.ruleset import builtin_rules_dir

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "sample_cases").glob("*.csv"))
PACKAGE_PARENT = Path(carscore.__file__).resolve().parent.parent
EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2
# attributes whose value a browser loads or follows
URL_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "action", "formaction", "poster", "data", "background", "cite"}
EXTERNAL = re.compile(r"(?i)(https?:|//|ftp:|file:|data:)")


class Page(HTMLParser):
    """The parts of a report the tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str], tuple[str, ...]]] = []  # tag, attributes, enclosing tags
        self.ids: list[str] = []
        self.styles: list[str] = []  # <style> contents
        self.text_of: dict[str, list[str]] = {}  # id of a section -> its text
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.errors: list[str] = []
        self.feed(text)
        self.close()

    VOID = {"meta", "br", "hr", "img", "input", "link", "source", "col", "area", "base", "wbr"}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes, tuple(t for t, _ in self.stack)))
        if "id" in attributes:
            self.ids.append(attributes["id"])
        if tag not in self.VOID:
            self.stack.append((tag, attributes))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes, tuple(t for t, _ in self.stack)))
        if "id" in attributes:
            self.ids.append(attributes["id"])

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1][0] if self.stack else '(nothing)'}>")
            while self.stack and self.stack[-1][0] != tag:
                self.stack.pop()
        if self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1][0] == "style":
            self.styles.append(data)
        for _, attributes in self.stack:
            if attributes.get("id"):
                self.text_of.setdefault(attributes["id"], []).append(data)

    def text(self, element_id: str) -> str:
        return " ".join(" ".join(self.text_of.get(element_id, [])).split())

    def find(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        return [a for t, a, _ in self.elements if t == tag and all(a.get(k) == v for k, v in wanted.items())]

    def sections(self) -> list[dict[str, str]]:
        return [a for t, a, _ in self.elements if t == "section"]


def external_references(text: str) -> list[str]:
    """Everything in a page that a browser would fetch from elsewhere."""
    page = Page(text)
    found = []
    for tag, attributes, _ in page.elements:
        if tag == "script":
            found.append(f"<script {attributes}>")
        if tag == "link" and "stylesheet" in attributes.get("rel", "").lower():
            found.append(f"<link rel=stylesheet {attributes}>")
        for name, value in attributes.items():
            if name in URL_ATTRIBUTES and value and not value.startswith("#"):
                found.append(f"<{tag} {name}={value!r}>")
            if name == "style" and re.search(r"url\(\s*['\"]?(?!#)", value):
                found.append(f"<{tag} style={value!r}>")
    for style in page.styles:
        if "@import" in style:
            found.append("@import in a stylesheet")
        found += [f"url({m})" for m in re.findall(r"url\(\s*['\"]?([^)'\"]*)", style) if not m.startswith("#")]
        found += [f"{m!r} in a stylesheet" for m in EXTERNAL.findall(style)]
    return found


@cache
def sample_report() -> str:
    a = assess_paths([str(p) for p in SAMPLES], load_engine(None))
    return build_report(a, cohort_of(a), [p.name for p in SAMPLES])


@cache
def sample_page() -> Page:
    return Page(sample_report())


def run_cli(*args: str, first_on_path: Path | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """carscore run as a user runs it; ``first_on_path``: a folder searched for modules first."""
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    environment["PYTHONPATH"] = os.pathsep.join([*([str(first_on_path)] if first_on_path else []), str(PACKAGE_PARENT)])
    environment["PYTHONIOENCODING"] = "utf-8"
    proc = subprocess.run(
        [sys.executable, "-m", "carscore.cli.app", *args],
        cwd=cwd,
        capture_output=True,
        env=environment,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    )


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr


# --- the page and its sections -----------------------------------------------------------


def test_the_report_has_every_section_in_order() -> None:
    page = sample_page()
    assert not page.errors, page.errors[:5]
    sections = page.sections()
    ids = [s.get("id") for s in sections]
    courses = [s["id"] for s in sections if s.get("class") == "course"]
    assert ids[:2] == ["cohort", "swimmer"], ids
    # in input order: synthetic_grades.csv, then tp53_ball_two_infusions.csv
    assert courses == [
        "course-SYN-CRS2-1",
        "course-SYN-CRS3-1",
        "course-SYN-CRS4-1",
        "course-SYN-ICANS-1",
        "course-TP53-BALL-01-1",
        "course-TP53-BALL-01-2",
    ], courses
    assert ids[2 : 2 + len(courses)] == courses and ids[2 + len(courses)] == "rulesets"
    assert page.find("header") and page.find("nav") and page.find("main")
    # the navigation links to every course
    links = {a.get("href") for t, a, enclosing in page.elements if t == "a" and "nav" in enclosing}
    assert {f"#{c}" for c in courses} <= links


def test_the_header_names_the_version_the_date_and_the_inputs() -> None:
    text = sample_report()
    header = text[text.index("<header>") : text.index("</header>")]
    assert f"version {carscore.__version__}" in header
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">', header)
    for p in SAMPLES:
        assert f"<code>{p.name}</code>" in header


def test_the_cohort_shows_the_rates_the_rule_sets_declare_with_their_intervals() -> None:
    a = assess_paths([str(p) for p in SAMPLES], load_engine(None))
    stats = cohort_of(a)
    page = Page(build_report(a, stats, figures=False))
    cohort = page.text("cohort")
    assert "6 courses assessed" in cohort
    view = shown(a.rulesets)
    for grade in view.grades:  # CRS and ICANS, from the rule sets' outputs
        r = stats[grade.summary_key("grade3plus")]
        assert (
            f"{grade.label}, grade ≥ 3 {r['count']}/{r['n']} {100 * r['rate']:.1f} {100 * r['ci_low']:.1f}–{100 * r['ci_high']:.1f}"
            in cohort
        )
    declared = rate_views(a.rulesets)
    assert declared, "the built-in rule sets declare cohort rates"
    for v in declared:
        r = stats[v.rate]
        assert f"{v.rate_label} {r['count']}/{r['n']}" in cohort
    assert "Overall marrow response (CR + CRi) 2/6 33.3" in cohort


def test_grade_distributions_keep_the_courses_without_a_grade_apart() -> None:
    page = sample_page()
    text = sample_report()
    table = text[text.index('<table class="distributions">') :]
    rows = re.findall(r"<tr><th scope=\"row\">(CRS|ICANS)</th>(.*?)</tr>", table[: table.index("</table>")])
    by_label = {label: re.findall(r"<td[^>]*>([^<]*)</td>", cells) for label, cells in rows}
    # three SYN-CRS courses have no neurological data: ICANS not assessable, not grade 0
    assert by_label["ICANS"][:7] == ["1", "1", "0", "0", "1", "0", "3"], by_label["ICANS"]
    assert by_label["CRS"][:7] == ["0", "3", "1", "1", "1", "0", "0"], by_label["CRS"]
    assert "not assessable" in page.text("cohort")


def test_not_assessable_is_never_shown_as_grade_0() -> None:
    text = sample_report()
    course = text[text.index('id="course-SYN-CRS2-1"') : text.index('id="course-SYN-CRS3-1"')]
    days = course[course.index('<table class="days">') :]
    # SYN-CRS2 has no neurological column: its ICANS cell each day is a dash, never 0
    icans = re.findall(r'<th scope="row" class="num">-?\d+</th><td class="g\d">\d</td>(<td[^>]*>[^<]*</td>)', days)
    assert len(icans) == 8 and set(icans) == {'<td class="na">–</td>'}, icans
    assert "max grade – (not assessable" in course


def test_each_course_has_its_summary_figures_tables_and_flags() -> None:
    text = sample_report()
    start = text.index('id="course-TP53-BALL-01-1"')
    course = text[start : text.index("</section>", start)]
    page = Page(course)
    assert [c for c in re.findall(r"<caption>([^<]+)</caption>", course)] == [
        "Course summary",
        "Disease assessments and CAR-T kinetics",
        "Grades by day, with the reasons",
    ]
    summary = course[: course.index("</table>")]
    # sample_cases/README.md: CRS grade 1 days 14-17, marrow relapse day 40, CAR loss day 28
    assert "max grade 1; onset day 14, last day 17, 4 day(s)" in summary
    assert "marrow relapse day 40" in summary and "CAR loss day 28" in summary
    assert "baseline CNS-3; CNS remission day 20" in summary
    assert [f["class"] for f in page.find("figure")] == ["figure timeline", "figure kinetics", "figure counts"]
    disease = course[course.index('<table class="disease">') :]
    assert '<th scope="col">Marrow blasts %</th>' in disease and ">CNS-3a<" in disease
    # the reasons of a graded day, and the flags with their days
    assert "<b>CRS:</b> fever" in course
    assert "<li><b>neutropenia_severe</b>: day 0, 2, 4, 7</li>" in course


def test_every_figure_has_alt_text_and_a_caption() -> None:
    page = sample_page()
    text = sample_report()
    figures = re.findall(r"<figure[^>]*>(.*?)</figure>", text, re.S)
    assert len(figures) >= 1 + 6 * 3, len(figures)  # the swimmer plot's pages, and three figures per course
    for f in figures:
        svg = re.match(r"\s*<svg([^>]*)><title>([^<]+)</title>", f)
        assert svg, f[:300]
        assert 'role="img"' in svg.group(1)
        label = re.search(r'aria-label="([^"]+)"', svg.group(1))
        assert label and label.group(1) == svg.group(2) and len(label.group(1)) > 20
        assert re.search(r"<figcaption>[^<]+</figcaption>", f)
    assert not page.errors


def test_the_report_fetches_nothing_from_elsewhere() -> None:
    text = sample_report()
    assert external_references(text) == []
    # not even a namespace URL: the whole page names none
    assert "http:" not in text and "https:" not in text
    assert "<script" not in text.lower() and "@import" not in text


def test_the_url_check_finds_what_a_browser_would_fetch() -> None:
    bad = (
        '<html><head><link rel="stylesheet" href="https://cdn.example/x.css"><style>@import "a.css";'
        ' body { background: url(//host/x.png) }</style></head><body><img src="http://x/y.png">'
        '<script src="a.js"></script><svg><image xlink:href="pic.png"/></svg><a href="#ok">ok</a></body></html>'
    )
    found = " ".join(external_references(bad))
    for expected in ("x.css", "@import", "//host/x.png", "http://x/y.png", "a.js", "pic.png"):
        assert expected in found, (expected, found)
    assert "#ok" not in found


def test_every_id_is_unique_and_every_reference_resolves() -> None:
    page = sample_page()
    text = sample_report()
    duplicates = {i for i in page.ids if page.ids.count(i) > 1}
    assert not duplicates, sorted(duplicates)[:10]
    ids = set(page.ids)
    references = set(re.findall(r"url\(#([^)]+)\)", text)) | set(re.findall(r'href="#([^"]+)"', text))
    assert references, "the page refers to its own parts"
    assert references <= ids, sorted(references - ids)[:10]


def test_the_stylesheet_is_inline_with_a_print_layout() -> None:
    page = sample_page()
    css = "\n".join(page.styles)
    assert "@media print" in css
    printed = css[css.index("@media print") :]
    assert re.search(r"nav\s*\{\s*display:\s*none", printed)
    assert re.search(r"section\.course\s*\{[^}]*break-before:\s*page", printed)
    assert not page.find("link")


def test_the_rule_sets_are_listed_with_versions_citations_and_checksums() -> None:
    page = sample_page()
    rulesets = page.text("rulesets")
    a = assess_paths([str(SAMPLES[0])], load_engine(None))
    for rs in a.rulesets:
        assert rs.id in rulesets and rs.version in rulesets
        assert " ".join(rs.citation.split())[:60] in rulesets
    assert re.search(r"sha256 [0-9a-f]{64}", rulesets)
    assert "(built-in)" in rulesets


def test_a_changed_parameter_is_named_with_its_built_in_value(tmp_path: Path) -> None:
    text = (builtin_rules_dir() / "thresholds.yaml").read_text(encoding="utf-8")
    changed, n = re.subn(r"(\n  car_copies_negative_below:\n    value: )[^\n]+", r"\g<1>50", text, count=1)
    assert n == 1
    (tmp_path / "thresholds.yaml").write_text(changed, encoding="utf-8")
    a = assess_paths([str(SAMPLES[1])], load_engine([tmp_path / "thresholds.yaml"]))
    page = Page(build_report(a, cohort_of(a), figures=False))
    rulesets = page.text("rulesets")
    assert re.search(r"car_copies_negative_below = 50 \(built-in 100(\.0)?\)", rulesets), rulesets
    assert "(from --rules)" in rulesets
    # the kinetics line reads the threshold from the rule set in use
    assert "last day at or above 50 copies/µg" in page.text("course-TP53-BALL-01-1")


def test_data_is_escaped_everywhere(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script>&<b>'
    rows = [
        {"patient_id": evil, "infusion": 1, "day": d, "temp_c": t, "hypotension": "no", "o2_device": "none", "car_copies": c}
        for d, t, c in [(0, "37.0", "10"), (1, "38.6", "500"), (2, "38.2", "2000"), (3, "37.1", "90")]
    ]
    csv = write_rows(tmp_path / "evil <img src=x>.csv", rows)
    a = assess_paths([str(csv)], load_engine(None))
    text = build_report(a, cohort_of(a), [str(csv)])
    page = Page(text)
    assert not page.find("script") and not page.find("img")
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&lt;b&gt;" in text or "&lt;script&gt;alert(&quot;x&quot;)" in text
    course = [s for s in page.sections() if s.get("class") == "course"]
    assert len(course) == 1 and re.fullmatch(r"course-[A-Za-z0-9_.-]+-1", course[0]["id"]), course
    assert evil in page.text(course[0]["id"])  # shown as written, as text
    assert external_references(text) == []


def test_two_patient_ids_that_read_alike_get_their_own_anchors() -> None:
    from carscore.htmlreport.course import anchors

    assert anchors([("A B", 1), ("A_B", 1), ("A B", 2), ("", 1)]) == [
        "course-A_B-1",
        "course-A_B-1-2",
        "course-A_B-2",
        "course-patient-1",
    ]


# --- figures made fit for the page ---------------------------------------------------------

MATPLOTLIB_SVG = """<?xml version="1.0" encoding="utf-8" standalone="no"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg xmlns:xlink="http://www.w3.org/1999/xlink" width="100pt" height="50pt" viewBox="0 0 100 50" xmlns="http://www.w3.org/2000/svg" version="1.1">
 <metadata><rdf:RDF><cc:Work><dc:type rdf:resource="http://purl.org/dc/dcmitype/StillImage"/></cc:Work></rdf:RDF></metadata>
 <defs>
  <style type="text/css">*{stroke-linejoin: round; stroke-linecap: butt}</style>
 </defs>
 <g id="figure_1">
  <g id="patch_1">
   <path d="M 0 50.123456 \nL 100 50.123456 \nz\n" clip-path="url(#p0a1b2c3d4e)" style="fill: url(#h1234567890); stroke: #000000"/>
  </g>
  <g id="line2d_1" transform="translate(1 2)"><use xlink:href="#m1" x="10.987654" y="20" style="stroke: #000000"/></g>
  <g id="text_1"><!-- P<1> --><text style="font-size: 8px" x="3" y="4" transform="rotate(-0 3 4)">a&lt;b</text></g>
 </g>
 <defs>
  <clipPath id="p0a1b2c3d4e"><rect x="0" y="0" width="100" height="50"/></clipPath>
  <path id="m1" d="M 0 0 L 0 3"/>
 </defs>
 <defs>
  <pattern id="h1234567890" patternUnits="userSpaceOnUse" x="0" y="0" width="72" height="72">
   <rect x="0" y="0" width="73" height="73" fill="#ffffff"/>
   <path d="M -36 36 L 36 -36" style="fill: #000000"/>
  </pattern>
 </defs>
</svg>
"""


def test_a_figure_is_inlined_with_ids_of_its_own_and_its_alt_text() -> None:
    svg = inline_svg(MATPLOTLIB_SVG, "c7t", 'CRS "grade" 2 <day 3>')
    assert svg.startswith('<svg width="100pt" height="50pt" viewBox="0 0 100 50" version="1.1" role="img"')
    assert 'aria-label="CRS &quot;grade&quot; 2 &lt;day 3&gt;"><title>CRS &quot;grade&quot; 2 &lt;day 3&gt;</title>' in svg
    for gone in ("<?xml", "DOCTYPE", "metadata", "xmlns", "http", "<!--", "xlink:", "rotate(-0", "\n"):
        assert gone not in svg, gone
    ids = re.findall(r'\bid="([^"]+)"', svg)
    assert ids and all(i.startswith("c7t-") for i in ids), ids  # only the ids referred to are kept
    assert set(re.findall(r'(?:url\(#|href="#)([^")]+)', svg)) == set(ids)
    assert "M0 50.1L100 50.1z" in svg and 'x="10.9"' in svg  # a tenth of a point
    assert svg.count("<g") == svg.count("</g>") == 1 and '<g transform="translate(1 2)">' in svg
    assert ">a&lt;b</text>" in svg


def test_figures_share_their_hatch_patterns_and_styles() -> None:
    shared = SharedMarkup()
    one = shared.take(inline_svg(MATPLOTLIB_SVG, "f1", "one"))
    two = shared.take(inline_svg(MATPLOTLIB_SVG, "f2", "two"))
    assert "<pattern" not in one + two and "<defs></defs>" not in one
    # the hatched path's style, with its reference to the shared pattern, is a class of the page
    assert '<path d="M0 50.1L100 50.1z" clip-path="url(#f1-0)" class="k1"/>' in one
    assert '<path d="M0 50.1L100 50.1z" clip-path="url(#f2-0)" class="k1"/>' in two
    assert "style=" not in one + two
    definitions = shared.definitions()
    assert definitions.count("<pattern") == 1 and 'id="hatch1"' in definitions and 'aria-hidden="true"' in definitions
    css = shared.stylesheet()
    assert "svg .k1 { fill: url(#hatch1); stroke: #000000 }" in css


def test_a_style_cannot_close_the_stylesheet_it_is_written_in() -> None:
    shared = SharedMarkup()
    shared.take('<svg><path style="font-family: &lt;/style&gt;&lt;script&gt;"/></svg>')
    assert "</style" not in shared.stylesheet() and "<script" not in shared.stylesheet()


def test_a_figure_that_cannot_be_drawn_is_named_and_the_report_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from carscore import figures

    def broken(kind: str, a: Any, courses: list[int]) -> Any:
        raise RuntimeError(f"no {kind} today")

    monkeypatch.setattr(figures, "course_drawing", broken)
    a = assess_paths([str(SAMPLES[0])], load_engine(None))
    notes: list[str] = []
    page = Page(build_report(a, cohort_of(a), notes=notes))
    assert (
        len(notes) == 4 * 3
        and "SYN-CRS2 · infusion 1: the timeline figure could not be drawn (RuntimeError: no timeline today)" in notes
    )
    assert "the kinetics figure could not be drawn" in page.text("problems")
    assert page.find("figure", **{"class": "figure swimmer"})  # the swimmer plot is still there


def test_worker_processes_draw_the_same_figures() -> None:
    from carscore.htmlreport.drawings import COURSES_FOR_WORKERS, draw
    from carscore.htmlreport.sections import page

    a = assess_paths([str(p) for p in SAMPLES], load_engine(None))
    assert cohort_of(a)["n_patients"] < COURSES_FOR_WORKERS
    # the sample report's figures were drawn in this process (six courses); here by two workers
    shared = page(a, cohort_of(a), [], "now")
    draw(a, shared, workers=2)
    assert not shared.figure_notes, shared.figure_notes
    alone = re.findall(r'<figure class="figure (?:timeline|kinetics|counts)">\s*(<svg.*?</svg>)', sample_report(), re.S)
    assert len(alone) == 6 * 3
    assert [f.svg for c in shared.courses for f in c.figures] == alone


# --- the command ----------------------------------------------------------------------------


def test_the_command_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    proc = run_cli("report", *(f"sample_cases/{p.name}" for p in SAMPLES), "-o", str(out))
    no_traceback(proc)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    page = Page(out.read_text(encoding="utf-8"))
    assert len([s for s in page.sections() if s.get("class") == "course"]) == 6
    assert external_references(out.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("output", "said"),
    [
        (None, "give -o REPORT.html"),
        ("report.htm", "-o must end in .html"),
        ("report.pdf", "-o must end in .html"),
        ("-", "-o must end in .html"),
    ],
)
def test_the_report_must_be_an_html_file(tmp_path: Path, output: str | None, said: str) -> None:
    proc = run_cli("report", f"sample_cases/{SAMPLES[0].name}", *(["-o", output] if output else []), cwd=ROOT)
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE
    assert said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_report_is_never_written_onto_an_input(tmp_path: Path) -> None:
    source = tmp_path / "cases.html"
    source.write_bytes(SAMPLES[0].read_bytes())
    proc = run_cli("report", str(source), "-o", str(source))
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE and "refusing to write the result onto the input file" in proc.stderr
    assert source.read_bytes() == SAMPLES[0].read_bytes()


def test_problems_are_named_on_stderr_and_in_the_report(tmp_path: Path) -> None:
    rows = [
        {"patient_id": "P1", "infusion": 1, "day": 0, "temp_c": "37.0", "hypotension": "no", "o2_device": "none"},
        {"patient_id": "P1", "infusion": 1, "day": 1, "temp_c": "hot", "hypotension": "no", "o2_device": "none"},
        {"patient_id": "P2", "infusion": 1, "day": 0, "temp_c": "38.5", "hypotension": "no", "o2_device": "none"},
    ]
    csv = write_rows(tmp_path / "cases.csv", rows)
    out = tmp_path / "report.html"
    proc = run_cli("report", str(csv), "-o", str(out))
    no_traceback(proc)
    assert proc.returncode == EXIT_DATA, proc.stderr
    assert "error:" in proc.stderr and "temp_c" in proc.stderr and "row 3" in proc.stderr
    page = Page(out.read_text(encoding="utf-8"))
    problems = page.text("problems")
    assert "error" in problems and "row 3" in problems and "column temp_c" in problems and "'hot'" in problems


def test_without_the_plots_extra_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    # a jinja2 that cannot be imported stands for one that is not installed
    fake = tmp_path / "missing" / "jinja2"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'jinja2'\")\n", encoding="utf-8")
    out = tmp_path / "report.html"
    proc = run_cli("report", f"sample_cases/{SAMPLES[0].name}", "-o", str(out), first_on_path=tmp_path / "missing")
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE
    assert "pip install 'carscore[plots]'" in proc.stderr and "jinja2" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_without_the_figures_the_page_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import carscore as package

    monkeypatch.setitem(sys.modules, "carscore.figures", None)  # an import of it fails
    monkeypatch.delattr(package, "figures", raising=False)
    a = assess_paths([str(SAMPLES[0])], load_engine(None))
    notes: list[str] = []
    page = Page(build_report(a, cohort_of(a), notes=notes))
    assert len(notes) == 1 and notes[0].startswith("no figure could be drawn: carscore.figures cannot be loaded")
    assert not page.find("figure") and "no figure could be drawn" in page.text("problems")
    assert len([s for s in page.sections() if s.get("class") == "course"]) == 4


def test_a_report_with_no_course_assessed_still_names_the_problems(tmp_path: Path) -> None:
    csv = tmp_path / "cases.csv"
    csv.write_text("patient_id,infusion,day,temp_c\nP1,1,x,37.0\n", encoding="utf-8")
    out = tmp_path / "report.html"
    proc = run_cli("report", str(csv), "-o", str(out))
    no_traceback(proc)
    assert proc.returncode == EXIT_DATA
    page = Page(out.read_text(encoding="utf-8"))
    assert [s.get("id") for s in page.sections()] == ["cohort", "swimmer", "rulesets", "problems"]
    assert "No course could be assessed" in page.text("swimmer")
    assert "row 2" in page.text("problems") and "column day" in page.text("problems")


def test_the_words_of_a_figure_are_never_changed() -> None:
    words = 'P1 id="a" style="fill: red" url(#c0-0) 1.23456 M 1 L 2'
    svg = MATPLOTLIB_SVG.replace(">a&lt;b</text>", f">{words}</text>")
    shared = SharedMarkup()
    inlined = shared.take(inline_svg(svg, "c0", "alt"))
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", inlined)
    assert [html.unescape(t) for t in texts] == [words]


def test_ctrl_c_stops_the_workers_at_once(tmp_path: Path) -> None:
    import signal
    import time

    from carscore.htmlreport.drawings import COURSES_FOR_WORKERS

    rows = [
        {
            "patient_id": f"P{n:02d}",
            "infusion": 1,
            "day": d,
            "temp_c": "38.4" if d == 2 else "37.0",
            "hypotension": "no",
            "o2_device": "none",
        }
        for n in range(5 * COURSES_FOR_WORKERS)  # enough for the workers to draw for several seconds
        for d in range(-1, 8)
    ]
    csv = write_rows(tmp_path / "cohort.csv", rows)
    out, temporary = tmp_path / "report.html", tmp_path / "tmp"
    temporary.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(PACKAGE_PARENT), "TMPDIR": str(temporary)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "carscore.cli.app", "report", str(csv), "-o", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(temporary.glob("carscore-report-*/job.pickle")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the report was done before the workers could be seen"
        time.sleep(2.0)  # the page is built by now: the report waits for its workers
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        asked = time.monotonic()
        _, err = proc.communicate(timeout=30)
        waited = time.monotonic() - asked
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert waited < 2.5, f"Ctrl-C took {waited:.1f} s to stop the report (the workers were waited for)"
    assert err.decode().strip().splitlines() == ["carscore: interrupted; no output file was changed"]
    assert not out.exists() and list(temporary.iterdir()) == []
