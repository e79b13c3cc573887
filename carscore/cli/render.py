"""Rich terminal rendering of assessments, cohorts and rule sets.

Colour follows severity; NO_COLOR (and a non-terminal stdout) gives plain
text. Data goes to stdout, messages to stderr.

Everything that comes from the user (patient ids, file names, cell values,
rule-file text) is shown literally: the consoles interpret no markup and no
emoji codes, and control characters are shown escaped (``\\x1b``), so that
an id such as ``[red]X[/red]`` prints as written and a file name cannot send
escape sequences to the terminal.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from carscore.cli.console import literal, message, printable
from carscore.presentation import OutputView, Shown, day_ranges, shown

if TYPE_CHECKING:
    pass

GRADE_STYLES = {0: "green", 1: "yellow", 2: "dark_orange", 3: "red", 4: "bold red", 5: "bold white on red"}
CLASS_STYLES = {
    "CNS-1": "green",
    "CNS-2": "yellow",
    "CNS-3": "red",
    "CR": "green",
    "CRi": "cyan",
    "NR": "red",
    "relapse": "bold red",
}
SPARK = "▁▂▃▄▅▆▇█"


# C0 controls (tab and newline included), DEL, C1 controls (8-bit CSI among
# them), and the invisible direction and line-separator characters that can
# make a terminal show text in another order than it is written (zero-width
# joiners, which some scripts and emoji need, are kept)
def _grade(value: Any) -> Text:
    if value is None:
        return Text("–", style="dim")
    return Text(str(value), style=GRADE_STYLES.get(int(value), ""))


def _class(value: Any) -> Text:
    if value is None:
        return Text("–", style="dim")
    style = CLASS_STYLES.get(str(value), CLASS_STYLES.get(str(value)[:5], ""))
    return literal(value, style)


def _bool(value: Any, words: tuple[str, str] = ("neg", "pos")) -> Text:
    """A yes/no value in the words its output declares (MRD: neg / pos)."""
    if value is None:
        return Text("–", style="dim")
    return Text(words[0] if value else words[1], style="green" if value else "yellow")


def _day_or_dash(v: Any) -> str:
    return "–" if v is None else str(v)


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e5 else f"{v:.3g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def sparkline(points: list[tuple[int, float]], threshold: float | None, loss_day: int | None = None) -> Text:
    """CAR copies on a log scale, one character per measurement; red below the
    threshold; '|' where the level crossed below it after the peak (CAR loss)."""
    text = Text()
    if not points:
        return text
    logs = [math.log10(max(v, 1.0)) for _, v in points]
    low, high = min(logs), max(logs)
    span = (high - low) or 1.0
    for (day, value), lv in zip(points, logs):
        if loss_day is not None and day == loss_day:
            text.append("|", style="bold red")
        ch = SPARK[min(len(SPARK) - 1, int((lv - low) / span * (len(SPARK) - 1)))]
        below = threshold is not None and value < threshold
        text.append(ch, style="red" if below else "cyan")
    return text


def _reasons(day: dict[str, Any], shown: Shown) -> Text:
    text = Text()
    labels = shown.reason_labels
    first = True
    for key, value in day["reasons"].items():
        if not value or _is_quiet(key, day, shown):
            continue
        if not first:
            text.append("\n")
        text.append(f"{printable(labels.get(key, key))}: ", style="bold")
        text.append(printable(value, keep_newlines=True))
        first = False
    return text


def _is_quiet(key: str, day: dict[str, Any], shown: Shown) -> bool:
    """Days a grade's rule set calls quiet (grade 0 with nothing notable, or
    not assessable): the table already says it."""
    view = shown.graded_reasons.get(key)
    if view is None:
        return False
    grade = day.get(view.name)
    reason = day["reasons"].get(key) or ""
    if grade is None:
        return reason.startswith("not assessable")
    return grade == 0 and reason.startswith(view.quiet) if view.quiet else False


def render_grade(a: Any, console: Console, limit: int | None = None) -> None:
    """Every course's day table, reasons and summary; ``limit`` courses at most
    (a table of a thousand courses is read by no one: csv and json hold them all)."""
    from dataclasses import replace

    import polars as pl

    from carscore import report
    from carscore.compile import COURSE

    summaries = report.summary_rows(a)
    if not summaries:
        message("No course could be assessed.", "bold red")
    left_out = len(summaries) - limit if limit is not None and len(summaries) > limit else 0
    if left_out:
        summaries = summaries[:limit]
        a = replace(a, days=a.days.filter(pl.col(COURSE).is_in([s["_course"] for s in summaries])))
    days_by_course = report.day_rows(a)
    view = shown(a.rulesets)
    inline = console.width >= INLINE_REASONS_MIN_WIDTH
    for s in summaries:
        days = days_by_course.get(s["_course"], [])
        console.print(_course_table(s, days, view, inline))
        if not inline:
            console.print(_reason_list(days, view))
        console.print(_summary_panel(s, days, a, s["_course"], view))
    if left_out:
        console.print(Text(f"{left_out:,} more courses not shown: add --all to show them, or use --format csv or json", "bold"))


# below this width the reasons follow the table as wrapped text instead of a column
INLINE_REASONS_MIN_WIDTH = 110


def _reason_list(days: list[dict[str, Any]], shown: Shown) -> Text:
    text = Text()
    for d in days:
        why = _reasons(d, shown)
        if not why.plain:
            continue
        text.append(f"Day {d['day']}\n", style="bold")
        for line in why.split("\n"):
            text.append("  ")
            text.append_text(line)
            text.append("\n")
    text.rstrip()
    return text


def _course_table(s: dict[str, Any], days: list[dict[str, Any]], shown: Shown, inline: bool = True) -> Table:
    title = literal(s["patient_id"], "bold")
    title.append(f" · infusion {s['infusion']}  (")
    title.append(printable(s["file"]))
    title.append(")")
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAVY,
        show_lines=False,
        expand=False,
    )
    table.add_column("Day", justify="right")
    for view in shown.columns:
        table.add_column(view.label, justify="center")
    table.add_column("Flags", max_width=20 if inline else None, overflow="fold")
    if inline:
        table.add_column("Why", overflow="fold", ratio=1, min_width=40)
    for d in days:
        table.add_row(
            str(d["day"]),
            *(_cell(view, d) for view in shown.columns),
            literal(", ".join(d["flags"]), "magenta"),
            *([_reasons(d, shown)] if inline else []),
        )
    return table


def _cell(view: OutputView, day: dict[str, Any]) -> Text:
    value = view.value_in(day)
    if view.kind == "grade":
        return _grade(value)
    if view.kind == "flag":
        return _bool(value, view.words)
    return _class(value)


def _summary_panel(s: dict[str, Any], days: list[dict[str, Any]], a: Any, course: int, shown: Shown) -> Panel:
    tox = Table.grid(padding=(0, 2))
    tox.add_column(style="bold")
    tox.add_column()
    for view in shown.grades:
        line = Text()
        line.append("max grade ")
        line.append_text(_grade(s.get(view.summary_key("max_grade"))))
        onset = s.get(view.summary_key("onset_day"))
        if onset is not None:
            last, count = s.get(view.summary_key("last_day")), s.get(view.summary_key("days"))
            line.append(f"  onset day {onset}, last day {last}, {count} day(s)")
        tox.add_row(view.label, line)
    tox.add_row(
        "Treatment",
        f"tocilizumab from day {_day_or_dash(s.get('tocilizumab_first_day'))}, "
        f"corticosteroids from day {_day_or_dash(s.get('corticosteroids_first_day'))}",
    )
    resp = Table.grid(padding=(0, 2))
    resp.add_column(style="bold")
    resp.add_column()
    best = Text()
    best.append_text(_class(s.get("best_bm_response")))
    if s.get("mrd_negative_remission"):
        best.append(", MRD-negative", style="green")
    if s.get("bm_relapse_day") is not None:
        best.append(f"; marrow relapse day {s['bm_relapse_day']}", style="bold red")
    resp.add_row("Marrow", best)
    cns = Text()
    cns.append("baseline ")
    cns.append_text(_class(s.get("cns_status_baseline")))
    if s.get("cns_remission_day") is not None:
        cns.append(f"; CNS remission day {s['cns_remission_day']}", style="green")
    if s.get("cns_relapse_day") is not None:
        cns.append(f"; CNS relapse day {s['cns_relapse_day']}", style="bold red")
    resp.add_row("CNS", cns)
    resp.add_row("Kinetics", _kinetics_line(s, a, course))
    if s.get("b_cell_recovery_day") is not None:
        resp.add_row("B cells", f"recovery after aplasia on day {s['b_cell_recovery_day']}")
    for view in shown.course_lines:
        if s.get(view.name) is not None:
            resp.add_row(view.label, _course_value(view, s[view.name]))
    timeline = _assessment_timeline(days, a, course)
    flags = _flag_days(days)
    parts: list[Any] = [tox, Text(""), resp]
    if timeline is not None:
        parts += [Text(""), timeline]
    if flags:
        parts += [Text(""), flags]
    return Panel(Group(*parts), title="Course summary", title_align="left", expand=False)


def _course_value(view: OutputView, value: Any) -> Text:
    if view.kind == "grade":
        text = Text("grade ").append_text(_grade(value))
    elif view.kind == "flag":
        text = Text(view.words[0] if value else view.words[1], style="bold red" if value else "")
    elif view.kind == "day":
        text = Text(f"day {value}")
    elif view.kind == "number":
        text = Text(_num(value))
    else:
        text = _class(value)
    if view.note:
        text.append(f"  ({view.note})", style="dim")
    return text


def _kinetics_line(s: dict[str, Any], a: Any, course: int) -> Text:
    text = Text()
    if s.get("car_cmax") is None:
        return Text("no CAR copies recorded", style="dim")
    text.append(
        f"Cmax {_num(s['car_cmax'])} copies/µg on day {s['car_tmax_day']}, "
        f"AUC0-28 {_num(s.get('car_auc_0_28'))}, last ≥ threshold day {_day_or_dash(s.get('car_last_detected_day'))}"
    )
    if s.get("car_loss_day") is not None:
        text.append(f", loss day {s['car_loss_day']}", style="bold red")
    points = _car_points(a, course)
    if points:
        text.append("\n")
        text.append(f"day {points[0][0]} ")
        text.append_text(sparkline(points, _car_threshold(a), s.get("car_loss_day")))
        text.append(f" day {points[-1][0]} (log scale; red below threshold; | loss)")
    return text


def _car_threshold(a: Any) -> float | None:
    for rs in a.rulesets:
        p = rs.parameters.get("car_copies_negative_below")
        if p is not None:
            return float(p.value)
    return None


def _car_points(a: Any, course: int) -> list[tuple[int, float]]:
    import polars as pl

    from carscore.compile import COURSE

    frame = a.days.filter((pl.col(COURSE) == course) & pl.col("car_copies").is_not_null() & (pl.col("day") > 0))
    return list(frame.select("day", "car_copies").iter_rows())


def _assessment_timeline(days: list[dict[str, Any]], a: Any, key: int) -> Table | None:
    import polars as pl

    from carscore.compile import COURSE

    cols = ["day", "bm_blasts_pct", "bm_mrd_pct", "pb_blasts_pct", "csf_wbc", "csf_rbc", "csf_blasts"]
    frame = a.days.filter(pl.col(COURSE) == key).filter(
        pl.any_horizontal([pl.col(c).is_not_null() for c in cols[1:]])
        | pl.any_horizontal([pl.col(c).fill_null(False) for c in ("cranial_nerve_palsy", "cns_imaging_positive")])
    )
    if frame.height == 0:
        return None
    by_day = {d["day"]: d for d in days}
    t = Table(title="Disease assessments", title_justify="left", box=box.MINIMAL, padding=(0, 1))
    for name in (
        "Day",
        "Marrow blasts %",
        "MRD %",
        "Blood blasts %",
        "CSF WBC/µL",
        "CSF RBC/µL",
        "Cytospin",
        "CNS",
        "Marrow",
        "MRD",
    ):
        t.add_column(name, justify="right" if name != "Cytospin" else "center")
    for row in frame.select(cols).iter_rows(named=True):
        d = by_day.get(row["day"], {})
        blasts = row["csf_blasts"]
        t.add_row(
            str(row["day"]),
            _num(row["bm_blasts_pct"]),
            _num(row["bm_mrd_pct"]),
            _num(row["pb_blasts_pct"]),
            _num(row["csf_wbc"]),
            _num(row["csf_rbc"]),
            "–" if blasts is None else ("blasts" if blasts else "clear"),
            _class(d.get("cns_substatus") or d.get("cns_status")),
            _class(d.get("bm_response")),
            _bool(d.get("mrd_negative")),
        )
    return t


def _flag_days(days: list[dict[str, Any]]) -> Text | None:
    seen: dict[str, list[int]] = {}
    for d in days:
        for f in d["flags"]:
            seen.setdefault(f, []).append(d["day"])
    if not seen:
        return None
    text = Text()
    text.append("Flags\n", style="bold")
    for f, ds in seen.items():
        text.append(f"  {printable(f)}", style="magenta")
        text.append(f": day {day_ranges(ds)}\n")
    text.rstrip()
    return text
