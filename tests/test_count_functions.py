"""The counting functions of criteria §7.0 in the rule language: the platelet
transfusion rule inside and outside an episode, episodes begun so far (read
from earlier measurements only), recent values, and reason-only decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from carscore.assess import load_engine
from carscore.intake import read_text

RULES = """\
id: counting
title: counting
version: "1"
citation: test
let:
  dips: "episodes_at_or_below(anc, 0.5, 1, 3)"
  current: "recent(anc, 2)"
summary:
  low_days: "days_below(platelets, 20, 0, 30, 3, yes(platelet_transfusion), 7)"
  low_days_plain: "days_below(platelets, 20, 0, 30, 3)"
decisions:
  - outputs: []
    reason: counting
    cases:
      - when: "recorded(dips)"
        reason: "{dips} {current}"
"""


def grade(tmp_path: Path, csv: str):
    (tmp_path / "counting.yaml").write_text(RULES, encoding="utf-8")
    engine = load_engine([tmp_path / "counting.yaml"], builtins=False)
    return engine.assess(read_text(csv, "p.csv", engine.contract).rows)


@pytest.mark.parametrize(
    "rows, with_rule, without_rule",
    [
        # 10 on day 1, 30 from day 3 with a transfusion on day 3: days 3-9 are supported, so the
        # episode runs on to day 9 (days 1-9 counted); without the rule it ends at once (day 1 only)
        ("1,10,\n3,30,yes\n5,30,\n8,30,\n15,30,\n", 9, 1),
        # a transfusion before any day below starts nothing
        ("1,30,yes\n2,30,\n3,30,\n", 0, 0),
        # a transfusion after recovery (three unsupported days above) is ignored
        ("1,10,\n2,30,\n5,30,\n6,30,yes\n9,30,\n", 1, 1),
        # transfusions before the window count too (7 days up to the day): day -2 covers days 0-4
        ("-2,50,yes\n0,10,\n1,30,\n4,30,\n9,30,\n", 5, 1),
    ],
)
def test_the_transfusion_rule_counts_supported_days_only_inside_an_episode(tmp_path, rows, with_rule, without_rule):
    days = grade(tmp_path, "patient_id,day,platelets,platelet_transfusion\n" + "".join("P," + r for r in rows.splitlines(True)))
    assert days["low_days"][0] == with_rule
    assert days["low_days_plain"][0] == without_rule


def test_episodes_are_counted_from_earlier_measurements_only(tmp_path):
    csv = "patient_id,day,anc\nP,1,0.2\nP,5,0.3\nP,6,1.0\nP,8,1.0\nP,9,1.0\nP,12,0.4\nP,20,0.4\n"
    days = grade(tmp_path, csv)
    assert days["_reason_counting"].to_list() == ["1 0.2", "1 0.3", "1 1", "1 1", "1 1", "2 0.4", "2 0.4"]
    # what day 6 says does not change when later days are added or removed
    shorter = grade(tmp_path, "patient_id,day,anc\nP,1,0.2\nP,5,0.3\nP,6,1.0\n")
    assert shorter["_reason_counting"].to_list() == ["1 0.2", "1 0.3", "1 1"]


def test_recent_values_last_the_given_number_of_days(tmp_path):
    days = grade(tmp_path, "patient_id,day,anc\nP,1,0.2\nP,3,\nP,4,\n")
    assert days["_reason_counting"].to_list() == ["1 0.2", "1 0.2", "1 not recorded"]
