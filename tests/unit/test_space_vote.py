"""Vote policies are searchable: a space's ``vote:`` list makes one candidate per policy, each
compiled and simulated exactly (best-of-n and score-weighted votes through the runtime's path)."""

from cascadec.sim.search import load_candidates
from cascadec.sim.synthetic import synthetic_registry_yaml
from cascadec.spec.vote import ConfidenceMetric, VotePolicy

SPACE = """version: 1
name: s
models: reg.yaml
defaults: {max_tokens: 48, prompt: raw}
strategy:
  cascade:
    - {model: 0.1M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 3M}
  vote: {policy: weighted, metric: logprob}
search:
  tiers:
    - {escalate_if: "agreement < {a} or score_max < {s}", grid: {a: [0.75, 1.0], s: [0.5]}}
    - {}
  vote:
    - null
    - {policy: best, metric: score}
    - {policy: weighted, metric: score, temperature: 0.5}
"""


def test_a_vote_list_makes_one_candidate_per_policy(tmp_path):
    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml())
    (tmp_path / "space.yaml").write_text(SPACE)
    _, space, _, _, candidates = load_candidates(tmp_path / "space.yaml")
    assert len(candidates) == 2 * 3
    votes = [c.strategy.vote for c in candidates]
    assert votes.count(None) == 2  # null: majority (the base's weighted vote is not kept)
    policies = {(v.policy, v.metric) for v in votes if v is not None}
    assert policies == {
        (VotePolicy.BEST, ConfidenceMetric.SCORE),
        (VotePolicy.WEIGHTED, ConfidenceMetric.SCORE),
    }


def test_without_a_vote_list_the_base_vote_is_kept(tmp_path):
    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml())
    (tmp_path / "space.yaml").write_text(SPACE.split("  vote:\n    - null")[0])
    _, _, _, _, candidates = load_candidates(tmp_path / "space.yaml")
    assert {c.strategy.vote.policy for c in candidates} == {VotePolicy.WEIGHTED}
