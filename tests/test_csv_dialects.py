"""CSV files as Excel and hospital systems really write them (encodings,
line ends, delimiters, trailing empty columns, blank lines), malformed rows
named by their physical line while the rest of the file is read, and the
sources layer (folders, links, duplicates, stdin)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from carscore.contract import load_contract
from carscore.csvread import FILE, LINE, MALFORMED, MALFORMED_COLUMN, MALFORMED_VALUE, read_frames
from carscore.errors import InputProblem
from carscore.intake import read_sources
from carscore.sources import Source, sources_from_paths

FIXTURES = Path(__file__).parent / "fixtures" / "dialects"
CONTRACT = load_contract()


def read(data: bytes, name: str = "f.csv", **options) -> tuple[pl.DataFrame | None, list[InputProblem], list[str]]:
    frames, problems, notes = read_frames([Source(name, data)], CONTRACT, **options)
    assert len(frames) <= 1
    return (frames[0] if frames else None), problems, notes


def rows(frame: pl.DataFrame, *columns: str) -> list[tuple]:
    return frame.select(*columns).rows()


def as_text(value: object) -> str | None:
    """A cell as text whether the fast road parsed it as a number or not."""
    if value is None:
        return None
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).strip()


def temps(frame: pl.DataFrame) -> list[tuple[str, str | None, int]]:
    return [(p, as_text(t), line) for p, t, line in rows(frame, "patient_id", "temp_c", LINE)]


def good(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col(MALFORMED).is_null())


def malformed(frame: pl.DataFrame) -> dict[int, tuple[str, str | None, str | None]]:
    bad = frame.filter(pl.col(MALFORMED).is_not_null())
    return {line: (msg, col, val) for line, msg, col, val in rows(bad, LINE, MALFORMED, MALFORMED_COLUMN, MALFORMED_VALUE)}


CLEAN = b"patient_id,day,temp_c\nA,0,37.0\nA,1,38.5\nB,0,39.1\n"
CLEAN_ROWS = [("A", "37", 2), ("A", "38.5", 3), ("B", "39.1", 4)]


# --------------------------------------------------------------------------- A. dialects


def test_clean_file_takes_the_fast_road_with_numbers_parsed() -> None:
    frame, problems, notes = read(CLEAN)
    assert problems == [] and notes == []
    assert frame is not None
    assert frame.schema["temp_c"] == pl.Float64 and frame.schema["day"] == pl.Float64
    assert temps(frame) == CLEAN_ROWS
    assert frame[MALFORMED].null_count() == frame.height
    assert frame.schema[MALFORMED] == pl.String


def test_excel_trailing_empty_columns_are_dropped_silently() -> None:
    frame, problems, notes = read(b"patient_id,day,temp_c,,,\nA,0,37.0,,,\nA,1,38.5,,,\nB,0,39.1,,,\n")
    assert problems == [] and notes == []
    assert frame is not None
    assert temps(frame) == CLEAN_ROWS
    assert [c for c in frame.columns if not c.startswith("_")] == ["patient_id", "day", "temp_c"]


def test_rows_shorter_than_excels_trailing_header_are_read() -> None:
    frame, problems, _ = read(b"patient_id,day,temp_c,,,\nA,0,37.0\nA,1,38.5,,\nB,0,39.1,,,\n")
    assert problems == []
    assert temps(frame) == CLEAN_ROWS


def test_unnamed_column_with_data_is_a_problem_naming_its_position() -> None:
    frame, problems, _ = read(b"patient_id,day,temp_c,,\nA,0,37.0,,\nA,1,38.5,,x\n")
    assert frame is None
    assert len(problems) == 1
    p = problems[0]
    assert p.file == "f.csv" and p.row == 1 and p.value == "x"
    assert "column 5 has no name" in p.message and "row 3" in p.message


def test_unnamed_column_with_data_is_left_out_with_a_note_when_asked() -> None:
    frame, problems, notes = read(b"patient_id,day,temp_c,,\nA,0,37.0,,\nA,1,38.5,,x\n", ignore_unknown=True)
    assert problems == []
    assert len(frame) == 2
    assert any("column 5" in n and n.startswith("f.csv: ") for n in notes)


@pytest.mark.parametrize(
    "data",
    [
        b"patient_id,day,temp_c\n\nA,0,37.0\nA,1,38.5\n\n\nB,0,39.1\n\n",
        b"patient_id,day,temp_c\r\n\r\nA,0,37.0\r\nA,1,38.5\r\n\r\n\r\nB,0,39.1\r\n\r\n",
        b"patient_id,day,temp_c\n,,\nA,0,37.0\nA,1,38.5\n , ,\n,,\nB,0,39.1\n,,\n",
    ],
    ids=["blank lines", "blank CRLF lines", "rows of empty cells"],
)
def test_blank_lines_are_skipped_without_losing_a_patient(data: bytes) -> None:
    frame, problems, notes = read(data)
    assert problems == [] and notes == []
    assert temps(frame) == [("A", "37", 3), ("A", "38.5", 4), ("B", "39.1", 7)]


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf" + CLEAN,
        CLEAN.replace(b"\n", b"\r\n"),
        CLEAN.replace(b"\n", b"\r"),
        CLEAN.replace(b"\n", b"\r").rstrip(b"\r"),
        b"\xef\xbb\xbf" + CLEAN.replace(b"\n", b"\r\n"),
    ],
    ids=["utf-8 bom", "crlf", "lone cr", "lone cr, no final line end", "bom and crlf"],
)
def test_bom_and_line_ends(data: bytes) -> None:
    frame, problems, notes = read(data)
    assert problems == [] and notes == []
    assert temps(frame) == CLEAN_ROWS


def test_tab_separated_file_is_read_and_noted() -> None:
    frame, problems, notes = read(CLEAN.replace(b",", b"\t"))
    assert problems == []
    assert temps(frame) == CLEAN_ROWS
    assert notes == ["f.csv: cells separated by tabs"]


def test_semicolon_file_with_decimal_commas() -> None:
    data = b"patient_id;day;temp_c;ferritin\nA;0;37,0;850\nA;1;38,5;1.250,5\nB;0;39,1;12,25\n"
    frame, problems, notes = read(data)
    assert problems == []
    assert rows(frame, "temp_c", "ferritin") == [("37.0", "850"), ("38.5", "1250.5"), ("39.1", "12.25")]
    assert "f.csv: cells separated by semicolons (;)" in notes
    assert "f.csv: decimal commas read as decimal points (38,5 = 38.5)" in notes
    assert frame[MALFORMED].null_count() == frame.height


def test_semicolon_decimal_commas_reach_the_graded_numbers() -> None:
    data = b"patient_id;day;temp_c\nA;0;37,0\nA;1;38,5\n"
    intake = read_sources([Source("f.csv", data)], CONTRACT)
    assert intake.problems == []
    table = intake.rows if hasattr(intake, "rows") else intake.days  # intake's table of typed rows
    assert table["temp_c"].to_list() == [37.0, 38.5]


def test_semicolon_file_with_points_only_is_read_as_written() -> None:
    frame, problems, notes = read(b"patient_id;day;temp_c;ferritin\nA;0;37.5;1.234\n")
    assert problems == []
    assert rows(frame, "temp_c", "ferritin") == [("37.5", "1.234")]
    assert not any("decimal commas" in n for n in notes)
    assert frame[MALFORMED].null_count() == 1


def test_grouped_number_in_a_decimal_comma_file_is_never_guessed() -> None:
    # 1.234 in a file that writes 38,5: a thousands dot (1234) or a decimal point?
    data = b"patient_id;day;temp_c;ferritin\nA;0;38,5;850\nB;0;37,0;1.234\n"
    frame, problems, _ = read(data)
    assert problems == []
    assert malformed(frame) == {3: (malformed(frame)[3][0], "ferritin", "1.234")}
    assert "decimal commas" in malformed(frame)[3][0]
    assert rows(good(frame), "patient_id") == [("A",)]


def test_excel_sep_line_names_the_delimiter_and_shifts_lines() -> None:
    frame, problems, notes = read(b"sep=;\npatient_id;day;temp_c\nA;0;37,0\nA;1;38,5\n")
    assert problems == []
    assert temps(frame) == [("A", "37.0", 3), ("A", "38.5", 4)]
    assert "f.csv: cells separated by semicolons (;)" in notes


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_its_byte_order_mark(codec: str) -> None:
    text = "patient_id,day,temp_c\nMüller,0,37.0\nMüller,1,38.5\n"
    data = text.encode(codec)
    if codec != "utf-16":  # the plain codec writes its own mark
        data = ("\ufeff" + text).encode(codec)
    frame, problems, notes = read(data)
    assert problems == []
    assert temps(frame) == [("Müller", "37", 2), ("Müller", "38.5", 3)]
    assert len(notes) == 1 and notes[0].startswith("f.csv: read as UTF-16")


def test_cp1252_file_is_read_as_cp1252_not_latin1_with_a_note() -> None:
    # 0x80 is the euro sign in cp1252 and a control character in latin-1;
    # 0x96 an en dash
    data = "patient_id,day,temp_c\nMüller–€,0,37.0\n".encode("cp1252")
    frame, problems, notes = read(data)
    assert problems == []
    assert rows(frame, "patient_id") == [("Müller–€",)]
    assert notes == ["f.csv: not UTF-8; read as Windows-1252 (cp1252)"]


def test_valid_utf8_is_never_decoded_again() -> None:
    data = "patient_id,day,temp_c\nMüller,0,37.0\nÅsa Ñúñez,0,37.2\n".encode()
    frame, problems, notes = read(data)
    assert problems == [] and notes == []
    assert rows(frame, "patient_id") == [("Müller",), ("Åsa Ñúñez",)]


def test_mostly_utf8_file_keeps_its_utf8_and_says_where_it_is_not() -> None:
    data = "patient_id,day,temp_c\nMüller,0,37.0\n".encode() + "Hélène,0,37.2\n".encode("cp1252")
    frame, problems, notes = read(data)
    assert problems == []
    assert rows(frame, "patient_id") == [("Müller",), ("Hélène",)]  # not MÃ¼ller
    assert len(notes) == 1
    assert notes[0].startswith("f.csv: not valid UTF-8 in 2 places (first on row 3)")  # the two é
    assert "Windows-1252 (cp1252)" in notes[0]


def test_fixture_excel_french_semicolon_cp1252() -> None:
    data = (FIXTURES / "excel_fr_semicolon_cp1252.csv").read_bytes()
    frame, problems, notes = read(data, "excel_fr.csv")
    assert problems == []
    assert [(p, t, f, line) for p, t, f, line in rows(frame, "patient_id", "temp_c", "ferritin", LINE)] == [
        ("Héloïse", "37.2", "850", 2),
        ("Héloïse", "38.6", "1250.5", 3),
        ("Héloïse", "39.1", "2400", 4),
        ("Zoë", "36.9", "310", 6),
        ("Zoë", "37.0", None, 7),
    ]
    assert "excel_fr.csv: not UTF-8; read as Windows-1252 (cp1252)" in notes
    assert "excel_fr.csv: cells separated by semicolons (;)" in notes
    assert "excel_fr.csv: ignored columns that carscore does not use: commentaire" in notes


def test_fixture_excel_unicode_text() -> None:
    frame, problems, notes = read((FIXTURES / "excel_unicode_text.txt").read_bytes(), "unicode.txt")
    assert problems == []
    assert rows(frame, "patient_id", "o2_device", LINE) == [("P01", "none", 2), ("P01", "nasal_cannula", 3), ("P02", "none", 4)]
    assert "unicode.txt: cells separated by tabs" in notes


def test_fixture_mac_excel_lone_cr() -> None:
    frame, problems, _ = read((FIXTURES / "mac_excel_cr.csv").read_bytes())
    assert problems == []
    assert temps(frame) == [("M1", "37", 2), ("M1", "38.2", 3), ("M2", "39", 4)]


# --------------------------------------------------------------------------- B. malformed rows


def test_row_with_more_cells_than_the_header_is_named_and_the_rest_read() -> None:
    data = b"patient_id,day,temp_c\nA,0,37.0\nB,0,38,5\nC,0,39.1\n"
    frame, problems, _ = read(data)
    assert problems == []
    assert temps(good(frame)) == [("A", "37.0", 2), ("C", "39.1", 4)]
    bad = malformed(frame)
    assert list(bad) == [3]
    assert "4 cells where the header has 3" in bad[3][0]
    # the row still carries who it belongs to, for the caller to refuse the course
    assert frame.filter(pl.col(LINE) == 3)["patient_id"].to_list() == ["B"]


def test_extra_empty_cells_past_the_header_hold_nothing_and_are_read() -> None:
    frame, problems, _ = read(b"patient_id,day,temp_c\nA,0,37.0,\nA,1,38.5,,\n")
    assert problems == []
    assert frame[MALFORMED].null_count() == 2
    assert temps(frame) == [("A", "37.0", 2), ("A", "38.5", 3)]


def test_row_with_fewer_cells_is_read_with_blank_cells() -> None:
    frame, problems, _ = read(b"patient_id,day,temp_c,sbp\nA,0,37.0\nA,1,38.5,110\n")
    assert problems == []
    assert rows(frame, "sbp") == [(None,), (110.0,)]
    assert frame[MALFORMED].null_count() == 2


def test_unterminated_quote_is_named_and_the_rows_after_it_read() -> None:
    data = b'patient_id,day,temp_c,notes\nA,0,37.0,\nB,0,38.0,"no closing quote\nC,0,39.1,\nD,0,37.5,ok\n'
    frame, problems, _ = read(data)
    assert problems == []
    assert temps(good(frame)) == [("A", "37.0", 2), ("C", "39.1", 4), ("D", "37.5", 5)]
    bad = malformed(frame)
    assert list(bad) == [3] and "never closed" in bad[3][0]
    assert frame.filter(pl.col(LINE) == 3)["patient_id"].to_list() == ["B"]


def test_unmatched_quote_that_a_later_quote_would_close_does_not_swallow_rows() -> None:
    data = b'patient_id,day,temp_c,notes\nA,0,37.0,"open\nB,0,38.0,x\nC,0,39.1,y"\nD,0,37.5,\n'
    frame, problems, _ = read(data)
    assert problems == []
    bad = malformed(frame)
    assert 2 in bad and "never closed" in bad[2][0]
    assert ("B", "38.0", 3) in temps(good(frame)) and ("D", "37.5", 5) in temps(good(frame))
    assert 4 in bad  # C's closing quote stands alone: also named


def test_stray_quote_inside_a_cell_is_named_with_its_column_and_value() -> None:
    data = b'patient_id,day,temp_c,surname\nA,0,37.0,Smith\nB,0,38.0,O"Brien\nC,0,39.1,"Jones"\n'
    frame, problems, _ = read(data)
    assert problems == []
    assert temps(good(frame)) == [("A", "37.0", 2), ("C", "39.1", 4)]
    bad = malformed(frame)
    assert list(bad) == [3]
    message, column, value = bad[3]
    assert "quote mark" in message and column == "surname" and value == 'O"Brien'


def test_text_after_a_closing_quote_is_named() -> None:
    frame, _, _ = read(b'patient_id,day,temp_c,notes\nA,0,37.0,"a"b\nB,0,38.0,\n')
    assert list(malformed(frame)) == [2]
    assert "after the closing quote" in malformed(frame)[2][0]


def test_last_row_cut_short_is_named() -> None:
    data = b"patient_id,day,temp_c,sbp,o2_device\nA,0,37.0,110,none\nA,1,38.5,10"
    frame, problems, _ = read(data)
    assert problems == []
    bad = malformed(frame)
    assert list(bad) == [3] and "cut short" in bad[3][0]
    assert temps(good(frame)) == [("A", "37.0", 2)]


def test_last_row_without_a_line_end_but_complete_is_read() -> None:
    frame, problems, _ = read(CLEAN.rstrip(b"\n"))
    assert problems == []
    assert temps(frame) == CLEAN_ROWS
    assert frame[MALFORMED].null_count() == 3


def test_nul_byte_far_into_the_file_is_named_by_its_line() -> None:
    body = b"".join(b"A,%d,37.0\n" % d for d in range(400))  # well past the first 4 KB
    data = b"patient_id,day,temp_c\n" + body + b"B,0,3\x008.0\nC,0,39.1\n"
    assert data.index(b"\x00") > 4096
    frame, problems, _ = read(data)
    assert problems == []
    bad = malformed(frame)
    assert list(bad) == [402]
    message, column, _ = bad[402]
    assert "NUL byte" in message and column == "temp_c"
    assert frame.filter(pl.col(LINE) == 402)["patient_id"].to_list() == ["B"]
    assert good(frame).height == 401 and good(frame)[LINE].to_list()[-1] == 403


def test_nul_bytes_in_the_header_make_a_binary_file() -> None:
    frame, problems, _ = read(b"patient_id,\x00day\nA,0\n")
    assert frame is None and "binary data" in problems[0].message


def test_excel_workbook_saved_with_a_csv_name_is_named_as_such() -> None:
    frame, problems, _ = read(b"PK\x03\x04\x14\x00\x06\x00" + bytes(200))
    assert frame is None and "Excel workbook" in problems[0].message


def test_line_numbers_after_a_quoted_cell_with_a_line_break() -> None:
    data = b'patient_id,day,temp_c,notes\nA,0,37.0,"line one\nline two"\nA,1,38.5,\nB,0,39.1,"x\r\ny"\nB,1,37.2,\n'
    frame, problems, _ = read(data)
    assert problems == []
    assert temps(frame) == [("A", "37.0", 2), ("A", "38.5", 4), ("B", "39.1", 5), ("B", "37.2", 7)]


def test_fixture_notes_multiline_names_the_right_row_end_to_end() -> None:
    data = (FIXTURES / "notes_multiline.csv").read_bytes()
    intake = read_sources([Source("notes.csv", data)], CONTRACT)
    temp_problems = [p for p in intake.problems if p.column == "temp_c"]
    assert [(p.file, p.row, p.value) for p in temp_problems] == [("notes.csv", 8, "101.3")]


def test_malformed_row_whose_patient_cannot_be_told_is_a_problem() -> None:
    data = b"patient_id,day,temp_c\nA,0,37.0\n,0,38,5\nC,0,39.1\n"
    frame, problems, _ = read(data)
    assert temps(frame) == [("A", "37.0", 2), ("C", "39.1", 4)]
    assert len(problems) == 1
    p = problems[0]
    assert (p.file, p.row) == ("f.csv", 3)
    assert "4 cells" in p.message and "cannot be told" in p.message


def test_file_with_mostly_malformed_rows_is_refused_whole() -> None:
    # a decimal comma in a comma-separated file: every row has a cell too many
    data = b"patient_id,day,temp_c\n" + b"".join(b"A,%d,37,%d\n" % (d, d % 10) for d in range(30))
    frame, problems, _ = read(data)
    assert frame is None
    assert len(problems) == 1 and "30 of 30 rows" in problems[0].message and "row 2" in problems[0].message


def test_malformed_row_makes_intake_leave_out_only_that_course() -> None:
    data = b"patient_id,day,temp_c\nA,0,37.0\nA,1,38.5\nB,0,38,5\nB,1,37.0\nC,0,39.1\n"
    intake = read_sources([Source("f.csv", data)], CONTRACT)
    assert any(p.row == 4 and "4 cells" in p.message for p in intake.problems)
    assert any("B (infusion 1)" in p.message and "not assessed" in p.message for p in intake.problems)
    assessed = intake.courses.filter(pl.col("assessed"))["patient_id"].to_list()
    assert assessed == ["A", "C"]


# --------------------------------------------------------------------------- many files at once


def test_many_files_with_one_header_keep_their_files_and_lines() -> None:
    sources = [Source(f"p{i}.csv", b"day,temp_c\n0,37.0\n\n1,38.%d\n" % i) for i in range(5)]
    frames, problems, notes = read_frames(sources, CONTRACT)
    assert problems == [] and notes == []
    frame = pl.concat(frames)
    assert frame.sort(FILE, LINE).select(FILE, LINE, "patient_id").rows() == [
        (i, line, f"p{i}") for i in range(5) for line in (2, 4)
    ]


def test_a_file_cut_short_among_many_is_still_named() -> None:
    sources = [Source(f"p{i}.csv", b"patient_id,day,temp_c,sbp\nP%d,0,37.0,110\n" % i) for i in range(4)]
    sources.append(Source("cut.csv", b"patient_id,day,temp_c,sbp\nQ,0,37.0,110\nQ,1,3"))
    frames, problems, _ = read_frames(sources, CONTRACT)
    frame = pl.concat(frames, how="diagonal_relaxed")
    cut = frame.filter(pl.col(FILE) == 4)
    assert cut.filter(pl.col(MALFORMED).is_not_null())[LINE].to_list() == [3]
    assert frame.filter(pl.col(MALFORMED).is_null()).height == 5


def test_every_source_is_counted_once_by_on_file() -> None:
    sources = [Source(f"p{i}.csv", b"day,temp_c\n0,37.0\n") for i in range(3)] + [Source("e.csv", b"")]
    ticks: list[int] = []
    read_frames(sources, CONTRACT, lambda: ticks.append(1))
    assert len(ticks) == 4


# --------------------------------------------------------------------------- D. sources


def write(path: Path, data: bytes = b"day,temp_c\n0,37.0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_links_are_followed_but_a_loop_is_walked_once(tmp_path: Path) -> None:
    write(tmp_path / "cohort" / "a.csv")
    write(tmp_path / "elsewhere" / "b.csv")
    (tmp_path / "cohort" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "cohort" / "loop").symlink_to(tmp_path / "cohort", target_is_directory=True)
    notes: list[str] = []
    sources, problems = sources_from_paths([str(tmp_path / "cohort")], notes=notes)
    assert problems == []
    assert sorted(Path(s.name).name for s in sources) == ["a.csv", "b.csv"]
    assert any("loop" in n and "not read again" in n for n in notes)


def test_the_same_file_reached_twice_is_read_once_with_a_note(tmp_path: Path) -> None:
    a = write(tmp_path / "cohort" / "a.csv")
    (tmp_path / "alias.csv").symlink_to(a)
    notes: list[str] = []
    sources, problems = sources_from_paths([str(tmp_path / "cohort"), str(a), str(a), str(tmp_path / "alias.csv")], notes=notes)
    assert problems == []
    assert [s.name for s in sources] == [str(a)]
    assert len(notes) == 3
    assert any("given twice" in n for n in notes)
    assert any(n.startswith(str(tmp_path / "alias.csv")) and "the same file as" in n for n in notes)


def test_a_folder_given_twice_is_read_once_with_one_note(tmp_path: Path) -> None:
    for i in range(5):
        write(tmp_path / "cohort" / "sub" / f"p{i}.csv")
    notes: list[str] = []
    cohort, sub = str(tmp_path / "cohort"), str(tmp_path / "cohort" / "sub")
    sources, problems = sources_from_paths([cohort, cohort, sub], notes=notes)
    assert problems == [] and len(sources) == 5
    assert notes == [f"{cohort}: given twice; read once", f"{sub}: already read in {cohort}; read once"]


def test_unreadable_subfolder_and_file_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "cohort" / "a.csv")
    write(tmp_path / "cohort" / "locked" / "b.csv")
    write(tmp_path / "cohort" / "secret.csv")
    real_scandir, real_read = os.scandir, Path.read_bytes

    def scandir(path):  # tests may run as root, who can read anything: refuse by hand
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def read_bytes(self: Path) -> bytes:
        if self.name == "secret.csv":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    sources, problems = sources_from_paths([str(tmp_path / "cohort")])
    assert [Path(s.name).name for s in sources] == ["a.csv"]
    named = {Path(p.file).name: p.message for p in problems}
    assert "permission denied" in named["locked"] and "not included" in named["locked"]
    assert "permission denied" in named["secret.csv"]


def test_broken_link_in_a_folder_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path / "cohort" / "a.csv")
    (tmp_path / "cohort" / "gone.csv").symlink_to(tmp_path / "nowhere.csv")
    sources, problems = sources_from_paths([str(tmp_path / "cohort")])
    assert len(sources) == 1
    assert [Path(p.file).name for p in problems] == ["gone.csv"]


def test_folder_without_csv_files_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path / "empty" / "readme.txt", b"hello")
    sources, problems = sources_from_paths([str(tmp_path / "empty")])
    assert sources == [] and [p.message for p in problems] == ["no CSV files in this folder"]


def test_lock_files_are_left_out_with_a_note_and_tsv_files_read(tmp_path: Path) -> None:
    write(tmp_path / "cohort" / "a.csv")
    write(tmp_path / "cohort" / "b.tsv", b"day\ttemp_c\n0\t37.0\n")
    write(tmp_path / "cohort" / "~$a.csv", b"\x00lock")
    write(tmp_path / "cohort" / "._a.csv", b"\x00\x05\x16\x07")
    notes: list[str] = []
    sources, problems = sources_from_paths([str(tmp_path / "cohort")], notes=notes)
    assert problems == []
    assert [Path(s.name).name for s in sources] == ["a.csv", "b.tsv"]
    assert len(notes) == 2


def test_dash_reads_the_stdin_bytes_once() -> None:
    notes: list[str] = []
    sources, problems = sources_from_paths(["-", "-"], stdin=CLEAN, notes=notes)
    assert problems == []
    assert [(s.name, s.data) for s in sources] == [("stdin", CLEAN)]
    assert notes == ["stdin: given twice; read once"]


def test_missing_path_is_a_problem() -> None:
    sources, problems = sources_from_paths(["no/such/file.csv"])
    assert sources == [] and problems[0].message == "no such file or folder"


# --------------------------------------------------------------------------- properties

_CELL = st.text(alphabet=st.sampled_from(list("ab 1.,;\"\t\n\r'é")), max_size=6)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(st.tuples(_CELL, _CELL), min_size=1, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
)
@example(cells=[("", "1\r\r\n1")], delimiter=",", newline="\n", final_newline=False)
def test_any_well_formed_file_is_read_back_cell_for_cell_with_its_lines(
    cells: list[tuple[str, str]], delimiter: str, newline: str, final_newline: bool
) -> None:
    """Whatever the cells hold (delimiters, quotes, line breaks), a file written
    by a correct CSV writer comes back cell for cell, each row with the
    physical line it starts on."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    # two text columns (o2_device is not checked here), and unused columns: a line
    # inside a quoted cell holding as many delimiters as a row is taken for an
    # unmatched quote, on purpose (rows must not be swallowed into a cell)
    writer.writerow(["patient_id", "day", "o2_device", "sbp", "crp", "wbc", "anc"])
    expected = []
    for k, (pid, other) in enumerate(cells):
        line = out.getvalue().count("\n") + 1  # the physical line this row starts on
        writer.writerow([pid, str(k), other, "", "", "", ""])
        expected.append((line, _same(pid), float(k), _same(other)))
    text = out.getvalue()
    if not final_newline:
        text = text[: -len(newline)]
    frame, problems, _ = read(text.encode("utf-8"))
    assert problems == []
    assert frame[MALFORMED].null_count() == frame.height
    got = [(ln, _same(p), float(d), _same(o)) for ln, p, d, o in frame.select(LINE, "patient_id", "day", "o2_device").rows()]
    assert got == expected


def _same(cell: str | None) -> str | None:
    """A cell as compared: surrounding blanks and the line-end style inside it do not count
    (a CR before a CRLF reads as CRLF once the reader has made the CRLF a LF)."""
    text = cell or ""
    while "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return text.strip() or None


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=300), st.sampled_from([b"", b"patient_id,day,temp_c\n", b"day;temp_c\r\n"]))
def test_no_bytes_make_the_reader_raise(data: bytes, header: bytes) -> None:
    frames, problems, notes = read_frames([Source("f.csv", header + data)], CONTRACT)
    for frame in frames:
        assert frame.schema[LINE] == pl.UInt32 and frame.schema[MALFORMED] == pl.String
    assert all(isinstance(p, InputProblem) and p.file == "f.csv" for p in problems)


_TOKEN = st.text(alphabet=st.sampled_from(list("abcAB019.-")), min_size=1, max_size=5)
_CORRUPTIONS = {
    "extra cell": lambda line, pos: line + ",x",
    "stray quote": lambda line, pos: line[:pos] + '"' + line[pos:],
    "nul byte": lambda line, pos: line[:pos] + "\x00" + line[pos:],
}


@settings(max_examples=200, deadline=None, database=None)
@given(
    ids=st.lists(_TOKEN, min_size=2, max_size=12),
    bad=st.integers(min_value=0),
    how=st.sampled_from(sorted(_CORRUPTIONS)),
    where=st.integers(min_value=0),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_one_spoiled_line_is_named_and_every_other_row_read(ids: list[str], bad: int, how: str, where: int, newline: str) -> None:
    lines = [f"{pid},{k},37.{k % 10}" for k, pid in enumerate(ids)]
    bad %= len(lines)
    lines[bad] = _CORRUPTIONS[how](lines[bad], where % (len(lines[bad]) + 1))
    data = ("patient_id,day,temp_c" + newline + newline.join(lines) + newline).encode()
    spoiled_line = bad + 2
    frame, problems, _ = read(data)
    assert frame is not None
    good_rows = frame.filter(pl.col(MALFORMED).is_null())
    assert good_rows[LINE].to_list() == [k + 2 for k in range(len(ids)) if k != bad]
    assert good_rows["patient_id"].to_list() == [pid for k, pid in enumerate(ids) if k != bad]
    # named once: in the frame for the caller to refuse its course, or as a
    # problem when its patient cannot be told (a NUL in patient_id)
    named_in_frame = frame.filter(pl.col(MALFORMED).is_not_null())[LINE].to_list()
    assert named_in_frame + [p.row for p in problems] == [spoiled_line]


def test_an_unusual_excel_separator_line_still_names_a_bad_row() -> None:
    data = b"sep=:\npatient_id:day:temp_c\nP1:0:38\nP1:1:38:x\nP2:0:37\n"
    frame, _, _ = read(data)
    bad = frame.filter(frame["_malformed"].is_not_null())
    assert bad["_line"].to_list() == [4] and "4 cells" in bad["_malformed"][0]
