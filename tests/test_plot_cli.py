"""carscore plot: choosing the course, where the image goes, pages of the swimmer plot,
and the install hint when matplotlib is missing (contract §3 exit codes, §7)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, write_rows
from typer.testing import CliRunner

from carscore.cli.app import app

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2
TP53 = str(ROOT / "sample_cases" / "tp53_ball_two_infusions.csv")
SAMPLES = str(ROOT / "sample_cases")
PNG = b"\x89PNG\r\n\x1a\n"


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, ["plot", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr, result.stderr
    return result


def test_kinetics_of_the_sample_overlays_both_infusions_without_patient(tmp_path: Path) -> None:
    out = tmp_path / "kinetics.png"
    result = cli(TP53, "--kind", "kinetics", "-o", str(out))
    assert result.exit_code == EXIT_OK, result.stderr
    assert out.read_bytes().startswith(PNG)


@pytest.mark.parametrize(("suffix", "opening"), [(".png", PNG), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_the_output_suffix_names_the_format(tmp_path: Path, suffix: str, opening: bytes) -> None:
    out = tmp_path / f"timeline{suffix.upper() if suffix == '.pdf' else suffix}"
    result = cli(TP53, "--kind", "timeline", "--patient", "TP53-BALL-01", "--infusion", "1", "-o", str(out))
    assert result.exit_code == EXIT_OK, result.stderr
    assert out.read_bytes().startswith(opening)


def test_an_output_that_is_not_an_image_is_a_usage_error(tmp_path: Path) -> None:
    result = cli(TP53, "--kind", "counts", "--infusion", "1", "-o", str(tmp_path / "counts.csv"))
    assert result.exit_code == EXIT_USAGE
    assert "must end in .png, .svg or .pdf" in result.stderr
    assert not (tmp_path / "counts.csv").exists()


def test_without_output_png_goes_to_a_redirected_standard_output() -> None:
    result = cli(TP53, "--kind", "counts", "--patient", "TP53-BALL-01", "--infusion", "2")
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout_bytes.startswith(PNG)


def test_without_output_on_a_terminal_is_a_usage_error_saying_what_to_give(monkeypatch: pytest.MonkeyPatch) -> None:
    from carscore.cli import plot_command
    from carscore.errors import UsageError

    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    with pytest.raises(UsageError, match=r"give -o FILE\.png, FILE\.svg or FILE\.pdf"):
        plot_command._format_of(None)
    assert plot_command._format_of(Path("x.SVG")) == "svg"


def test_several_courses_without_patient_is_a_usage_error_listing_them(tmp_path: Path) -> None:
    result = cli(SAMPLES, "--kind", "timeline", "-o", str(tmp_path / "t.png"))
    assert result.exit_code == EXIT_USAGE
    assert "the input holds 6 courses: give --patient ID" in result.stderr
    assert "SYN-CRS2 infusion 1" in result.stderr and "TP53-BALL-01 infusion 2" in result.stderr
    assert not (tmp_path / "t.png").exists()


def test_a_patient_with_two_infusions_needs_infusion_for_one_course_figures(tmp_path: Path) -> None:
    result = cli(TP53, "--kind", "counts", "--patient", "TP53-BALL-01", "-o", str(tmp_path / "c.png"))
    assert result.exit_code == EXIT_USAGE
    assert "patient 'TP53-BALL-01' has 2 courses" in result.stderr and "give --infusion N" in result.stderr


def test_an_unknown_patient_or_infusion_is_a_usage_error_listing_the_courses(tmp_path: Path) -> None:
    result = cli(TP53, "--kind", "timeline", "--patient", "NOBODY", "-o", str(tmp_path / "t.png"))
    assert result.exit_code == EXIT_USAGE
    assert "no assessed course of patient 'NOBODY'" in result.stderr and "TP53-BALL-01 infusion 1" in result.stderr
    result = cli(TP53, "--kind", "timeline", "--patient", "TP53-BALL-01", "--infusion", "3", "-o", str(tmp_path / "t.png"))
    assert result.exit_code == EXIT_USAGE
    assert "no infusion 3 of patient 'TP53-BALL-01'" in result.stderr


def test_one_course_in_the_input_needs_no_patient(tmp_path: Path) -> None:
    one = write_rows(tmp_path / "one.csv", [{"patient_id": "P1", "infusion": 1, "day": d, "temp_c": 37.0} for d in range(3)])
    result = cli(str(one), "--kind", "timeline", "-o", str(tmp_path / "t.svg"))
    assert result.exit_code == EXIT_OK, result.stderr
    assert b"P1, infusion 1" in (tmp_path / "t.svg").read_bytes()


def test_swimmer_pages_go_to_numbered_files_or_one_pdf(tmp_path: Path) -> None:
    result = cli(SAMPLES, "--kind", "swimmer", "--lanes-per-page", "4", "-o", str(tmp_path / "swimmer.png"))
    assert result.exit_code == EXIT_OK, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["swimmer-1.png", "swimmer-2.png"]
    assert "2 pages" in result.stderr
    result = cli(SAMPLES, "--kind", "swimmer", "--lanes-per-page", "4", "--sort", "crs", "-o", str(tmp_path / "swimmer.pdf"))
    assert result.exit_code == EXIT_OK, result.stderr
    pdf = (tmp_path / "swimmer.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Count 2" in pdf


def test_swimmer_pages_cannot_go_to_standard_output_and_take_no_patient(tmp_path: Path) -> None:
    result = cli(SAMPLES, "--kind", "swimmer", "--lanes-per-page", "2")
    assert result.exit_code == EXIT_USAGE
    assert "the swimmer plot has 3 pages" in result.stderr
    result = cli(SAMPLES, "--kind", "swimmer", "--patient", "SYN-CRS2", "-o", str(tmp_path / "s.png"))
    assert result.exit_code == EXIT_USAGE and "the swimmer plot shows every course" in result.stderr
    result = cli(SAMPLES, "--kind", "swimmer", "--sort", "height", "-o", str(tmp_path / "s.png"))
    assert result.exit_code == EXIT_USAGE


def test_bad_rows_are_named_and_the_figure_is_still_drawn_with_exit_1(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "bad.csv",
        [
            {"patient_id": "P1", "infusion": 1, "day": 0, "temp_c": 37.0},
            {"patient_id": "P1", "infusion": 1, "day": 1, "temp_c": "hot"},
            {"patient_id": "P1", "infusion": 1, "day": 2, "temp_c": 38.5},
            {"patient_id": "P2", "infusion": 1, "day": 0, "temp_c": 37.2},
        ],
    )
    out = tmp_path / "t.png"
    result = cli(str(path), "--kind", "timeline", "--patient", "P2", "-o", str(out))
    assert result.exit_code == EXIT_DATA
    assert "row 3, column temp_c" in result.stderr and "'hot'" in result.stderr
    assert out.read_bytes().startswith(PNG)
    # the course left out cannot be drawn: the choices offered are the assessed courses
    result = cli(str(path), "--kind", "timeline", "--patient", "P1", "-o", str(out))
    assert result.exit_code == EXIT_USAGE and "no assessed course of patient 'P1'" in result.stderr
    assert "1 course not assessed" in result.stderr


def test_nothing_assessed_means_nothing_to_draw_and_exit_1(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "bad.csv", [{"patient_id": "P1", "infusion": 1, "day": 0, "temp_c": "hot"}])
    result = cli(str(path), "--kind", "swimmer", "-o", str(tmp_path / "s.png"))
    assert result.exit_code == EXIT_DATA
    assert "no course could be assessed, so there is nothing to draw" in result.stderr
    assert not (tmp_path / "s.png").exists()


def test_without_matplotlib_the_command_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith(("matplotlib.", "carscore.figures"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = cli(TP53, "--kind", "kinetics", "-o", str(tmp_path / "k.png"))
    assert result.exit_code == EXIT_USAGE
    assert "pip install 'carscore[plots]'" in result.stderr
    assert not (tmp_path / "k.png").exists()
