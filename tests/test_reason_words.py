"""Reasons are worded case by case, on the days of that case only, with the
words that read their own day computed there too (engine.word_reasons). A
word that a timeline function reads must still be on every day. These tests
hold the texts equal to wording every reason on every day."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from carscore.assess import load_engine
from carscore.compile import COURSE, DAY
from carscore.intake import read_text

RULES = """\
id: wording
title: wording
version: "1"
citation: test
parameters:
  fever_c: {value: 38.0, unit: "°C", citation: test}
let:
  hot: "yes(temp_c >= fever_c)"
  # words of their own day: worded on the reason's days only
  temp_word: "concat('temperature ', temp_c, ' °C')"
  hot_word: "if(hot, concat(temp_word, ' (fever)'), temp_word)"
  # a word of its own day that a timeline word reads: needed on every day
  ferritin_word: "concat('ferritin ', ferritin)"
  ferritin_before: "previous(ferritin_word)"
  # a word of its own day that a reason template reads along the timeline
  crp_word: "concat('CRP ', crp)"
decisions:
  - outputs: [wording_grade]
    reason: wording
    note_missing: [temp_c, ferritin]
    cases:
      - when: "not recorded(temp_c)"
        then: null
      - when: "hot"
        then: 1
        reason: "{hot_word}; before: {ferritin_before}; earlier {previous(crp_word)}"
      - when: "temp_c < 36"
        then: 0
        reason: "cold: {temp_word}"
      - then: 0
        reason: "{temp_word}"
"""

CSV = """\
patient_id,infusion,day,temp_c,ferritin,crp
P1,1,0,37.0,500,10
P1,1,1,38.4,,12
P1,1,2,35.5,900,
P1,1,3,,1200,20
P1,1,4,38.9,,30
P2,1,0,39.0,100,5
P2,1,1,36.6,,
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    path: Path = tmp_path_factory.mktemp("rules") / "wording.yaml"
    path.write_text(RULES, encoding="utf-8")
    return load_engine([path], builtins=False)


def test_words_of_their_own_day_wait_for_the_reason(engine) -> None:
    deferred = {e.meta.output_name() for e in engine.plan.deferred_words}
    on_every_day = {e.meta.output_name() for batch in engine.plan.word_batches for e in batch}
    assert {"_let_wording__temp_word", "_let_wording__hot_word"} <= deferred
    # read by previous(): ferritin_before, and a template's previous(crp_word)
    assert {"_let_wording__ferritin_word", "_let_wording__ferritin_before", "_let_wording__crp_word"} <= on_every_day
    assert not deferred & on_every_day


def test_each_case_worded_with_its_own_text(engine) -> None:
    days = engine.assess(read_text(CSV, "p.csv", engine.contract).rows).sort(COURSE, DAY)
    reasons = days["_reason_wording"].to_list()
    assert reasons[0] == "temperature 37 °C"
    assert reasons[1] == "temperature 38.4 °C (fever); before: ferritin 500; earlier CRP 10; not recorded: ferritin"
    assert reasons[2] == "cold: temperature 35.5 °C"
    assert reasons[3] is None  # not assessable: no reason, no grade
    assert days["wording_grade"][3] is None
    assert reasons[4] == "temperature 38.9 °C (fever); before: ferritin 1200; earlier CRP 20; not recorded: ferritin"
    # another course: previous() never reaches into P1's days
    assert reasons[5] == "temperature 39 °C (fever); before: not recorded; earlier not recorded"


def test_wording_by_case_equals_wording_every_day(engine) -> None:
    """The texts are those one when/then over every case, on every day, gives."""
    lf = read_text(CSV, "p.csv", engine.contract).rows.lazy()
    for batch in engine.plan.row_batches + engine.plan.batches + engine.plan.word_batches:
        lf = lf.with_columns(batch)
    graded = lf.collect()
    everywhere = graded.lazy()
    for word in engine.plan.deferred_words:
        everywhere = everywhere.with_columns(word)
    worded = engine.word_reasons(graded)
    for rp in engine.plan.reasons:
        chain = None
        for case, text in rp.texts:
            cond = pl.col(rp.case_column) == case
            chain = pl.when(cond).then(text) if chain is None else chain.when(cond).then(text)
        expected = everywhere.with_columns(rp.timeline_values).select(chain.otherwise(None)).collect().to_series()
        assert worded[f"_reason_{rp.key}"].to_list() == expected.to_list()
        assert expected.drop_nulls().len() > 3
