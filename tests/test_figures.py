"""The figures (contract §7), checked by their structure on the Agg canvas, never by pixels:
axes and scales, threshold lines at the rule parameters' values, lanes, colours per grade,
empty panels that say why, inline SVG fit for an HTML page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ROOT, engine_for, write_rows
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from matplotlib.patches import StepPatch

from carscore.assess import assess_paths
from carscore.figures import KINDS, course_choices, course_drawing, image_bytes, pdf_pages, svg_text, swimmer_drawings
from carscore.figures.palette import GRADE_COLOURS, GRADE_HATCHES

TP53 = ROOT / "sample_cases" / "tp53_ball_two_infusions.csv"
SYNTHETIC = ROOT / "sample_cases" / "synthetic_grades.csv"


@cache
def samples():
    return assess_paths([str(TP53), str(SYNTHETIC)], engine_for())


def course_id(a, patient: str, infusion: int = 1) -> int:
    return next(c for c, p, i in course_choices(a) if p == patient and i == infusion)


def flat_lines(ax) -> dict[float, Line2D]:
    """Horizontal lines of an axes (threshold lines), by their height."""
    found = {}
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        x = line.get_xdata()
        if len(y) == 2 and y[0] == y[1] and list(x) == [0, 1]:
            found[float(y[0])] = line
    return found


def upright_lines(ax) -> set[float]:
    """Vertical lines of an axes (day markers), by their day."""
    days = set()
    for line in ax.get_lines():
        x = np.asarray(line.get_xdata(), dtype=float)
        if len(x) == 2 and x[0] == x[1] and list(line.get_ydata()) == [0, 1]:
            days.add(float(x[0]))
    return days


def texts(figure) -> str:
    return "\n".join(t.get_text() for t in figure.findobj(lambda o: hasattr(o, "get_text") and callable(o.get_text)))


def parameter_value(a, ruleset: str, name: str) -> float:
    return next(rs for rs in a.rulesets if rs.id == ruleset).parameters[name].value


def without_parameter(a, name: str):
    """The assessment as a rule set without ``name`` would leave it (a centre's own rule set)."""
    rulesets = [SimpleNamespace(id=rs.id, parameters={k: v for k, v in rs.parameters.items() if k != name}) for rs in a.rulesets]
    return SimpleNamespace(days=a.days, summaries=a.summaries, intake=a.intake, rulesets=rulesets)


# --- course choices ----------------------------------------------------------------


def test_course_choices_are_the_assessed_courses_in_input_order() -> None:
    assert course_choices(samples()) == [
        (0, "TP53-BALL-01", 1),
        (1, "TP53-BALL-01", 2),
        (2, "SYN-CRS2", 1),
        (3, "SYN-CRS3", 1),
        (4, "SYN-CRS4", 1),
        (5, "SYN-ICANS", 1),
    ]


def test_unknown_kinds_and_several_courses_for_one_course_figure_are_refused() -> None:
    a = samples()
    with pytest.raises(ValueError, match="unknown course figure"):
        course_drawing("swimmer", a, [0])
    with pytest.raises(ValueError, match="one course"):
        course_drawing("timeline", a, [0, 1])
    assert KINDS == ("timeline", "kinetics", "counts", "swimmer")


# --- kinetics --------------------------------------------------------------------------


def test_kinetics_overlays_both_infusions_on_a_log_axis_with_the_rule_threshold() -> None:
    a = samples()
    d = course_drawing("kinetics", a, [0, 1])
    car, b_cells = d.figure.axes
    assert car.get_yscale() == "log"
    assert b_cells.get_yscale() == "linear"
    threshold = parameter_value(a, "thresholds", "car_copies_negative_below")
    assert threshold in flat_lines(car)
    labels = [line.get_label() for line in car.get_lines()]
    assert "infusion 1" in labels and "infusion 2" in labels
    # the day-28 loss and the day-40 relapse of infusion 1, and day 0
    assert {0.0, 28.0, 40.0} <= upright_lines(car)
    words = texts(d.figure)
    assert "CAR loss day 28" in words and "relapse day 40" in words
    assert "Cmax 112\u2009000 (Tmax day 18)" in words and "Cmax 265\u2009000 (Tmax day 11)" in words
    assert "peak 112\u2009000 copies/µg on day 18, loss on day 28, relapse on day 40" in d.alt
    assert "infusion 2: peak 265\u2009000 copies/µg on day 11, no loss" in d.alt


def test_kinetics_b_cells_beneath_with_the_aplasia_threshold_and_recovery() -> None:
    a = samples()
    d = course_drawing("kinetics", a, [0])
    _, b_cells = d.figure.axes
    assert parameter_value(a, "thresholds", "b_cell_aplasia_below_pct") in flat_lines(b_cells)
    assert "B-cell recovery day 38" in texts(d.figure)
    assert "B cells (% of lymphocytes)" == b_cells.get_ylabel()


def test_kinetics_threshold_follows_the_parameter_in_use() -> None:
    a = assess_paths([str(TP53)], engine_for({"thresholds": {"car_copies_negative_below": 50}}))
    car = course_drawing("kinetics", a, [0]).figure.axes[0]
    assert 50.0 in flat_lines(car) and 100.0 not in flat_lines(car)


def test_kinetics_without_the_threshold_parameter_draws_no_line_and_says_so() -> None:
    a = without_parameter(samples(), "car_copies_negative_below")
    d = course_drawing("kinetics", a, [0])
    assert not flat_lines(d.figure.axes[0])
    assert "no CAR negativity threshold in the rule sets in use" in texts(d.figure)
    assert "no CAR negativity threshold" in d.alt


def test_kinetics_marks_undetectable_copies_on_the_floor_of_the_log_axis() -> None:
    car = course_drawing("kinetics", samples(), [0]).figure.axes[0]
    floor = [line for line in car.get_lines() if line.get_label() == "not detected (0 copies)"]
    assert len(floor) == 1 and list(floor[0].get_xdata()) == [40.0]
    assert floor[0].get_ydata()[0] > car.get_ylim()[0]


# --- timeline --------------------------------------------------------------------------


def grade_artists(figure, column: str) -> dict[str, StepPatch]:
    return {p.get_gid(): p for p in figure.findobj(StepPatch) if (p.get_gid() or "").startswith(column)}


def test_timeline_colours_each_grade_and_keeps_not_assessable_apart_from_grade_zero() -> None:
    a = samples()
    d = course_drawing("timeline", a, [course_id(a, "TP53-BALL-01", 1)])
    crs, icans, temperature, events = d.figure.axes
    assert crs.get_ylabel() == "CRS grade" and icans.get_ylabel() == "ICANS grade"
    icans_bars = grade_artists(d.figure, "icans_grade")
    assert set(icans_bars) == {"icans_grade-grade-0", "icans_grade-grade-1", "icans_grade-not-assessable"}
    assert to_hex(icans_bars["icans_grade-grade-1"].get_facecolor()) == GRADE_COLOURS[1].lower()
    assert to_hex(icans_bars["icans_grade-grade-0"].get_facecolor()) == GRADE_COLOURS[0].lower()
    not_assessable = icans_bars["icans_grade-not-assessable"]
    assert not not_assessable.get_fill() and not_assessable.get_hatch()
    # grade 1 on day 16 only; the not-assessable days are those with a null grade
    edges = icans_bars["icans_grade-grade-1"].get_data().edges
    assert (edges[0] + edges[1]) / 2 == 16
    null_days = a.days.filter((a.days["_course"] == 0) & a.days["icans_grade"].is_null())["day"].to_list()
    na_edges = not_assessable.get_data().edges
    assert [(na_edges[i] + na_edges[i + 1]) / 2 for i in range(0, len(na_edges), 2)] == null_days
    assert "CRS up to grade 1 (days 14 to 17)" in d.alt
    assert {t.get_text() for t in events.get_yticklabels()} >= {"Tocilizumab", "Corticosteroids", "Vasopressors", "Oxygen"}
    words = texts(d.figure)
    assert "CR MRD−" in words and "relapse MRD+" in words and "CNS-3" in words


def test_timeline_grades_differ_by_colour_and_hatch() -> None:
    a = samples()
    d = course_drawing("timeline", a, [course_id(a, "SYN-CRS4")])
    crs = grade_artists(d.figure, "crs_grade")
    assert {"crs_grade-grade-2", "crs_grade-grade-3", "crs_grade-grade-4"} <= set(crs)
    colours = {to_hex(crs[f"crs_grade-grade-{g}"].get_facecolor()) for g in (2, 3, 4)}
    hatches = {crs[f"crs_grade-grade-{g}"].get_hatch() for g in (2, 3, 4)}
    assert len(colours) == 3 and len(hatches) == 3
    assert len(set(GRADE_COLOURS.values())) == len(GRADE_COLOURS)
    assert len({GRADE_HATCHES[g] for g in range(1, 5)}) == 4
    # the fever line is the ASTCT rule set's parameter
    temperature = d.figure.axes[2]
    assert parameter_value(a, "astct_crs", "fever_temp_c") in flat_lines(temperature)
    assert "BiPAP" in texts(d.figure) and "×2" in texts(d.figure)


def test_timeline_of_a_course_without_neurological_data_says_icans_was_not_assessable() -> None:
    a = samples()
    d = course_drawing("timeline", a, [course_id(a, "SYN-CRS2")])
    assert "ICANS not assessable on any day" in texts(d.figure)
    assert "ICANS not assessable on any day" in d.alt


# --- counts ----------------------------------------------------------------------------


def test_counts_thresholds_are_the_icaht_parameters_and_neutropenic_days_are_shaded() -> None:
    a = samples()
    d = course_drawing("counts", a, [course_id(a, "TP53-BALL-01", 2)])
    anc, platelets = d.figure.axes
    icaht = next(rs for rs in a.rulesets if rs.id == "icaht").parameters
    assert {icaht["anc_severe_max"].value, icaht["anc_profound_max"].value} <= set(flat_lines(anc))
    assert {icaht["plt_severe_below"].value, icaht["plt_moderate_below"].value} <= set(flat_lines(platelets))
    shaded = [p for p in anc.patches if p.get_gid() == "neutropenic-days"] + [
        c for c in anc.collections if c.get_gid() == "neutropenic-days"
    ]
    assert shaded
    summary = a.summaries.filter(a.summaries["_course"] == 1).row(0, named=True)
    assert f"early ICAHT grade {summary['icaht_early_grade']}" in d.title
    assert "neutropenic (ANC ≤ 0.5 ×10⁹/L) days 0 to 9" in d.alt


def test_a_missing_fever_or_platelet_threshold_is_said_on_the_panel() -> None:
    a = without_parameter(samples(), "fever_temp_c")
    timeline = course_drawing("timeline", a, [0])
    assert "no fever threshold in the rule sets in use" in texts(timeline.figure)
    assert not flat_lines(timeline.figure.axes[2])
    bare = samples()
    for name in ("plt_mild_below", "plt_moderate_below", "plt_severe_below"):
        bare = without_parameter(bare, name)
    counts = course_drawing("counts", bare, [0])
    assert "no T-ICAHT thresholds in the rule sets in use" in texts(counts.figure)
    assert not flat_lines(counts.figure.axes[1])


def test_counts_without_icaht_parameters_shade_nothing_and_say_so() -> None:
    a = samples()
    bare = without_parameter(a, "anc_severe_max")
    d = course_drawing("counts", bare, [0])
    assert not [c for c in d.figure.axes[0].collections if c.get_gid() == "neutropenic-days"]
    assert "no severe-neutropenia threshold in the rule sets in use" in d.alt


# --- empty panels ----------------------------------------------------------------------


def test_a_course_without_car_counts_or_grades_draws_every_kind_with_empty_panels_that_say_why(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "bare.csv",
        [{"patient_id": "BARE-1", "infusion": 1, "day": d, "crp": 5} for d in range(0, 4)],
    )
    a = assess_paths([str(path)], engine_for())
    [(course, _, _)] = course_choices(a)
    kinetics = course_drawing("kinetics", a, [course])
    assert "no CAR transgene measurements" in texts(kinetics.figure)
    assert "no B-cell measurements" in texts(kinetics.figure)
    counts = course_drawing("counts", a, [course])
    assert "no ANC measurements" in texts(counts.figure) and "no platelet counts" in texts(counts.figure)
    timeline = course_drawing("timeline", a, [course])
    assert "no temperature recorded" in texts(timeline.figure)
    for d in (kinetics, counts, timeline):
        assert d.alt.endswith(".") and "BARE-1" in d.alt
        assert image_bytes(d, "png").startswith(b"\x89PNG")


def test_every_kind_draws_every_sample_course_and_names_it_in_the_alt_text() -> None:
    a = samples()
    for course, patient, infusion in course_choices(a):
        for kind in ("timeline", "kinetics", "counts"):
            d = course_drawing(kind, a, [course])
            assert f"{patient}, infusion {infusion}" in d.alt and f"{patient}, infusion {infusion}" in d.title
            assert all(ax.get_xlabel() in ("", "Days since CAR-T infusion (day 0)") for ax in d.figure.axes)
            assert all(0.0 in upright_lines(ax) for ax in d.figure.axes)  # day 0 on every panel


# --- swimmer ---------------------------------------------------------------------------


def lane_labels(d) -> list[str]:
    return [t.get_text() for t in d.figure.axes[0].get_yticklabels()]


def test_swimmer_has_one_lane_per_course_and_links_a_second_infusion_to_the_first() -> None:
    [d] = swimmer_drawings(samples())
    labels = lane_labels(d)
    assert len(labels) == 6
    assert labels[:2] == ["TP53-BALL-01 · inf 1", "TP53-BALL-01 · inf 2"]  # the only relapse comes first
    ax = d.figure.axes[0]
    [links] = [line for line in ax.get_lines() if line.get_gid() == "second-infusion-links"]
    [relapse] = [line for line in ax.get_lines() if line.get_gid() == "mark-relapse"]
    assert list(relapse.get_xdata()) == [40.0]
    [ongoing] = [line for line in ax.get_lines() if line.get_gid() == "mark-ongoing"]
    assert len(ongoing.get_xdata()) == 5  # every course but the relapsed one ends without an event
    severe = [line for line in ax.get_lines() if line.get_gid() == "mark-crs"]
    assert severe and len(severe[0].get_xdata()) >= 3  # SYN-CRS3 day 3, SYN-CRS4 days 2-4
    assert "1 relapse (TP53-BALL-01 · inf 1 day 40)" in d.alt
    assert ax.get_xlabel() == "Days since CAR-T infusion (day 0)"
    assert links.get_xdata()[0] < 0


def test_swimmer_marks_a_death_and_draws_no_arrow_after_it(tmp_path: Path) -> None:
    rows = [{"patient_id": "P1", "infusion": 1, "day": d, "temp_c": 37.0} for d in range(4)]
    rows[-1]["death_cause"] = "other"
    rows += [{"patient_id": "P2", "infusion": 1, "day": d, "temp_c": 37.0} for d in range(6)]
    a = assess_paths([str(write_rows(tmp_path / "died.csv", rows))], engine_for())
    [d] = swimmer_drawings(a, sort="input")
    ax = d.figure.axes[0]
    [death] = [line for line in ax.get_lines() if line.get_gid() == "mark-death"]
    [ongoing] = [line for line in ax.get_lines() if line.get_gid() == "mark-ongoing"]
    assert list(death.get_xdata()) == [3.0]
    assert len(ongoing.get_xdata()) == 1 and ongoing.get_ydata()[0] != death.get_ydata()[0]
    assert "1 death" in d.alt


@pytest.mark.parametrize(
    ("sort", "first"),
    [
        ("crs", "SYN-CRS4 · inf 1"),
        ("patient", "SYN-CRS2 · inf 1"),
        ("input", "TP53-BALL-01 · inf 1"),
        ("followup", "TP53-BALL-01 · inf 1"),
    ],
)
def test_swimmer_sorts(sort: str, first: str) -> None:
    [d] = swimmer_drawings(samples(), sort=sort)
    assert lane_labels(d)[0] == first


def test_swimmer_paginates_and_keeps_a_patients_infusions_on_one_page() -> None:
    # by patient: the four SYN courses fill 4 of 5 lanes; TP53's two infusions go together to page 2
    pages = swimmer_drawings(samples(), sort="patient", lanes_per_page=5)
    assert [len(lane_labels(p)) for p in pages] == [4, 2]
    assert lane_labels(pages[1]) == ["TP53-BALL-01 · inf 1", "TP53-BALL-01 · inf 2"]
    # a patient with more courses than a page holds is split, never dropped
    assert [len(lane_labels(p)) for p in swimmer_drawings(samples(), sort="input", lanes_per_page=1)] == [1] * 6
    assert all("page" in p.title for p in pages)
    with pytest.raises(ValueError):
        swimmer_drawings(samples(), sort="height")


def test_a_large_cohort_swimmer_stays_legible_in_pages_of_at_most_forty_lanes(tmp_path: Path) -> None:
    rows = [
        {"patient_id": f"PT-{p:03d}", "infusion": 1, "day": d, "temp_c": 37.0, "car_copies": 1000 if d else None}
        for p in range(90)
        for d in (0, 7)
    ]
    a = assess_paths([str(write_rows(tmp_path / "cohort.csv", rows))], engine_for())
    pages = swimmer_drawings(a, sort="patient")
    assert [len(lane_labels(p)) for p in pages] == [40, 40, 10]
    heights = [p.figure.get_figheight() for p in pages]
    assert heights[0] == heights[1] > heights[2]
    assert "(page 3 of 3)" in pages[2].title


# --- output ----------------------------------------------------------------------------


def test_svg_text_is_inline_markup_with_the_alt_text_as_title_and_no_external_references() -> None:
    d = course_drawing("kinetics", samples(), [0, 1])
    d.alt = d.alt + " <&>"
    svg = svg_text(d)
    assert svg.startswith("<svg") and "<?xml" not in svg and "<!DOCTYPE" not in svg
    assert "<title>" + d.alt.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "</title>" in svg
    assert not re.search(r"(href|src)=\"(https?:|file:|//)", svg)
    assert "url(http" not in svg and "@import" not in svg
    families = re.findall(r'font-family:\s*([^;"]+)', svg)
    assert families and all(f.strip().endswith("sans-serif") for f in families)
    assert "<text" in svg  # words stay text: small and searchable
    # two figures on one page never share an element id
    ids_a = set(re.findall(r' id="([^"]+)"', svg))
    ids_b = set(re.findall(r' id="([^"]+)"', svg_text(course_drawing("timeline", samples(), [0]))))
    assert ids_a and ids_b and not ids_a & ids_b
    # the same figure gets the same markup (in any process), and a prefix may be given
    assert svg_text(d) == svg
    assert ' id="page7-' in svg_text(d, id_prefix="page7")


def test_images_are_png_svg_and_pdf_and_the_same_data_give_the_same_bytes() -> None:
    d = course_drawing("counts", samples(), [0])
    png = image_bytes(d, "png")
    assert png.startswith(b"\x89PNG") and png == image_bytes(d, "png")
    assert image_bytes(d, "svg").lstrip().startswith(b"<?xml")
    assert image_bytes(d, "pdf").startswith(b"%PDF")
    pages = swimmer_drawings(samples(), lanes_per_page=3)
    assert pdf_pages(pages).count(b"/Type /Page\n") + pdf_pages(pages).count(b"/Type /Page ") >= 1
    with pytest.raises(ValueError):
        image_bytes(d, "gif")


def test_drawing_uses_no_pyplot_and_leaves_matplotlib_settings_as_they_were() -> None:
    code = (
        "import sys, matplotlib\n"
        "before = dict(matplotlib.rcParams)\n"
        "from carscore.assess import assess_paths, load_engine\n"
        "from carscore.figures import course_drawing, svg_text, swimmer_drawings\n"
        f"a = assess_paths([{str(TP53)!r}], load_engine(None))\n"
        "for kind in ('timeline', 'kinetics', 'counts'):\n"
        "    svg_text(course_drawing(kind, a, [0]))\n"
        "svg_text(swimmer_drawings(a)[0])\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "changed = [k for k, v in matplotlib.rcParams.items() if str(before.get(k)) != str(v)]\n"
        "assert not changed, changed\n"
    )
    # a named backend: reading rcParams["backend"] unset would itself import pyplot to choose one
    env = {**os.environ, "MPLBACKEND": "agg"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr


def test_importing_the_figures_without_matplotlib_is_an_import_error_naming_matplotlib() -> None:
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"
        "try:\n"
        "    import carscore.figures\n"
        "except ImportError as exc:\n"
        "    print('missing', exc.name)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip().split(".")[0] == "missing matplotlib", proc.stdout + proc.stderr


def test_the_readme_figures_are_small_and_made_by_the_documented_command() -> None:
    folder = ROOT / "docs" / "figures"
    script = (folder / "make_figures.sh").read_text(encoding="utf-8")
    for kind in ("timeline", "kinetics", "counts", "swimmer"):
        png = folder / f"{kind}.png"
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size < 150_000, png
        assert f"--kind {kind}" in script and f"docs/figures/{kind}.png" in script
