"""Source files: found by stem among the files and folders given, and read as text
(CSV, TSV, Parquet, SAS transport), every cell a string, with the record's line."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import polars as pl

from carscore.errors import UsageError

# the tabular files read (.txt as CSV)
SUFFIXES = (".csv", ".parquet", ".xpt", ".txt", ".tsv")


class Sources(dict):  # type: ignore[type-arg]
    """Files by lower-case stem. A stem asked for may hold * and ? (REDCap
    names its exports <PROJECT>_DATA_<date>_<time>.csv): the first file in
    name order that fits."""

    def find(self, stem: str) -> Path | None:
        wanted = stem.lower()
        if "*" in wanted or "?" in wanted:
            return next((dict.__getitem__(self, s) for s in sorted(self) if fnmatch.fnmatchcase(s, wanted)), None)
        return dict.get(self, wanted)

    def __contains__(self, stem: object) -> bool:
        return isinstance(stem, str) and self.find(stem) is not None

    def __getitem__(self, stem: str) -> Path:
        found = self.find(stem)
        if found is None:
            raise KeyError(stem)
        return found


def find_files(paths: list[str]) -> Sources:
    """Files by lower-case stem (clif_vitals.parquet -> clif_vitals), from files and folders."""
    found = Sources()
    for p in paths:
        path = Path(p)
        if path.is_dir():
            candidates = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
        elif path.is_file():
            candidates = [path]
        else:
            raise UsageError(f"{p}: no such file or folder")
        for f in candidates:
            found.setdefault(f.stem.lower(), f)
    return found


def read_text_table(path: Path) -> pl.DataFrame:
    """Every cell as text, with _line: the line in a text file (the header is
    line 1), the record number in a SAS transport file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
            frame = frame.with_columns(
                [
                    pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%.f%:z" if getattr(t, "time_zone", None) else "%Y-%m-%dT%H:%M:%S%.f")
                    if isinstance(t, pl.Datetime)
                    else pl.col(c).cast(pl.String)
                    for c, t in frame.schema.items()
                ]
            )
        elif suffix == ".xpt":
            frame = _read_xpt(path)
        else:
            separator = "\t" if suffix == ".tsv" else ","
            frame = pl.read_csv(path.read_bytes(), infer_schema=False, separator=separator, truncate_ragged_lines=False)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - readers raise many kinds for malformed files
        raise UsageError(
            f"{path}: cannot be read ({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})"
        ) from None
    # a text file's line (the header is line 1); a SAS transport file's record number
    first = 1 if suffix == ".xpt" else 2
    return frame.with_row_index("_line", offset=first).with_columns(pl.col("_line").cast(pl.Int64))


def _read_xpt(path: Path) -> pl.DataFrame:
    try:
        import pyreadstat  # type: ignore[import-not-found]
    except ImportError:
        raise UsageError(f"{path}: reading SAS transport files needs pyreadstat: pip install 'carscore[xpt]'") from None
    try:
        frame, _ = pyreadstat.read_xport(str(path), output_format="polars")
    except TypeError:  # pyreadstat before 1.3 gives pandas only
        data, _ = pyreadstat.read_xport(str(path))
        frame = pl.DataFrame([pl.Series(str(c), data[c].to_numpy()) for c in data.columns])
    # SAS numbers are doubles: 120 comes back as 120.0, a missing value as NaN
    return frame.with_columns(
        [
            pl.col(c).fill_nan(None).cast(pl.String).str.replace(r"\.0$", "") if t.is_float() else pl.col(c).cast(pl.String)
            for c, t in frame.schema.items()
        ]
    )
