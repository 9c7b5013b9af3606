"""The ladder numbers of ``cascadec zoo eval``: AUROC and the issue's targets."""

import math

import pandas as pd

from cascadec.zoo.evaluate import Ladder, ModelLadder, auroc


def test_auroc_perfect_inverse_and_ties():
    right = pd.Series([True, True, False, False])
    assert auroc(pd.Series([1.0, 0.9, 0.5, 0.25]), right) == 1.0
    assert auroc(pd.Series([0.25, 0.5, 0.9, 1.0]), right) == 0.0
    assert auroc(pd.Series([1.0, 1.0, 1.0, 1.0]), right) == 0.5
    assert auroc(pd.Series([1.0, 0.5, 0.5, 0.25]), right) == 0.875


def test_auroc_without_both_classes_is_nan():
    assert math.isnan(auroc(pd.Series([1.0, 0.5]), pd.Series([True, True])))


def _model(alias, params, greedy, easiest, vote_auroc):
    return ModelLadder(alias, params, greedy, {0: easiest, 1: 0.5}, greedy, vote_auroc, 1.0)


def test_ladder_targets():
    good = Ladder(
        1000,
        0,
        [
            _model("s", 100, 0.6, 1.0, 0.9),
            _model("m", 500, 0.8, 1.0, 0.8),
            _model("l", 3000, 0.99, 1.0, float("nan")),
        ],
    )
    assert good.failures() == []
    bad = Ladder(1000, 0, [_model("s", 100, 0.9, 0.9, 0.7), _model("l", 2000, 0.9, 1.0, 0.9)])
    missed = bad.failures()
    assert len(missed) == 5, missed
    assert '"missed_targets"' in bad.to_json()
