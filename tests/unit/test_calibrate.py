"""Calibration on synthetic banks: the held-out split is never used to choose, the guarantee
holds at its stated rate, and an impossible target is refused clearly."""

import numpy as np
import pytest

from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.testing import make_plan, strategy, tier
from cascadec.sim.calibrate import CalibrationError, Target, calibrate, split
from cascadec.sim.simulate import problems_for, simulate
from cascadec.sim.synthetic import SYNTHETIC_MODELS, synthetic_bank, synthetic_problems
from cascadec.stats import binom_cdf, clopper_pearson_upper, mcnemar_exact

EQ = Equivalence("exact")


def candidates():
    out = []
    for k in (1, 2, 4):
        for a in ("0.75", "1.0"):
            out.append(
                strategy(
                    f"c{k}-{a}",
                    [tier("S", k, escalate_if=f"agreement < {a}", cost=1.0), tier("L", 1, 0.0, cost=30.0)],
                )
            )
    return out


REF = strategy("ref", [tier("L", 1, 0.0, cost=30.0)])
PLAN = make_plan([*candidates(), REF], SYNTHETIC_MODELS)


def test_binomial_helpers():
    assert binom_cdf(0, 10, 0.1) == pytest.approx(0.9**10)
    assert binom_cdf(10, 10, 0.3) == 1.0
    assert 0.0 < clopper_pearson_upper(0, 100, 0.05) == pytest.approx(1 - 0.05 ** (1 / 100), rel=1e-6)
    assert mcnemar_exact(np.array([1, 1, 0, 1]), np.array([1, 0, 0, 1]))["only_a"] == 1


def test_held_out_is_never_looked_at_while_choosing():
    problems_frame = synthetic_problems(400, seed=5)
    bank = synthetic_bank(problems_frame, k=4, temperatures=(0.7,), seed=5)
    problems = problems_for(PLAN, problems_frame)
    calls = []

    def spy(plan, bank, probs, equivalence=None):
        calls.append({p.id for p in probs})
        return simulate(plan, bank, probs, equivalence=equivalence)

    target = Target(max_loss=0.1, delta=0.1)
    res = calibrate(candidates(), REF, PLAN, bank, problems, target, seed=3, equivalence=EQ, simulate_fn=spy)
    calib, hold = split(problems, 0.5, 3)
    hold_ids = {problems[i].id for i in hold}
    assert calls[0].isdisjoint(hold_ids)  # choosing saw calibration problems only
    assert calls[1] == hold_ids
    # scrambling every held-out answer in the bank changes nothing about the sequence
    scrambled = bank.copy()
    mask = scrambled["problem_id"].isin(hold_ids)
    scrambled.loc[mask, "text"] = "nothing here"
    try:
        again = calibrate(candidates(), REF, PLAN, scrambled, problems, target, seed=3, equivalence=EQ)
        assert again.sequence == res.sequence
    except CalibrationError as exc:  # nothing certifies on garbage, but the sequence was the same
        assert "held-out" in str(exc)


def test_impossible_target_is_refused_clearly():
    problems_frame = synthetic_problems(200, seed=6)
    bank = synthetic_bank(problems_frame, k=4, temperatures=(0.7,), seed=6)
    problems = problems_for(PLAN, problems_frame)
    weak = [strategy("weak", [tier("S", 1, cost=1.0)])]
    with pytest.raises(CalibrationError, match="no candidate meets the target"):
        calibrate(weak, REF, PLAN, bank, problems, Target(max_loss=0.001, delta=0.05), equivalence=EQ)


def test_guarantee_holds_at_the_stated_rate():
    """Over independent draws, the chosen strategy's true loss rate exceeds ε at most ~δ of the time."""
    population = synthetic_problems(4000, seed=11)
    bank = synthetic_bank(population, k=4, temperatures=(0.7,), seed=11)
    all_problems = problems_for(PLAN, population)
    truth = simulate(PLAN, bank, all_problems, equivalence=EQ)
    ref_right = truth.outcome.correct[-1] == 1
    true_loss = {
        s.key: float((ref_right & (truth.outcome.correct[c] != 1)).mean())
        for c, s in enumerate(PLAN.strategies[:-1])
    }
    target = Target(max_loss=0.08, delta=0.1)
    rng = np.random.default_rng(0)
    draws, failures, chosen = 40, 0, 0
    for d in range(draws):
        idx = rng.choice(len(all_problems), size=300, replace=False)
        try:
            res = calibrate(
                candidates(), REF, PLAN, bank, [all_problems[i] for i in idx], target, seed=d, equivalence=EQ
            )
        except CalibrationError:
            continue
        chosen += 1
        failures += true_loss[candidates()[res.chosen].key] > target.max_loss
    assert chosen >= draws // 2  # the test is not vacuous: most draws certify something
    assert failures <= target.delta * draws + 2  # δ·draws plus binomial slack
