"""Vote clustering speed: equivalence checks per second on a realistic vote, vs math-verify in-process.

A vote of k=8 samples on each of 1,000 problems (``--smoke``: 50), answers drawn as models give
them: the right value in several spellings (``\\frac{1}{2}``, ``0.5``, ``1/2``), near misses, other
integers, a few symbolic answers (``x+1`` / ``1+x``) and no answer at all. Three timings, same
ballots, same process:

- cascadec uncached: a fresh process-wide cache, ``tally`` per problem as the executor calls it
  (one parallel ``prepare`` per problem, then greedy clustering with both-way equality);
- cascadec cached: the same votes again (a resumed run, or a second strategy on the same samples);
- math-verify in-process: ``verify(parse(a), parse(b))`` both ways on every pair of distinct
  answers of each problem, which is what clustering without shortcuts or cache would cost.

    python benchmarks/bench_equivalence.py [--smoke] [--json OUT]
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from harness import emit, script_args  # noqa: E402

K = 8


def ballots_for(rng: random.Random, problem: int) -> list[str | None]:
    num, den = rng.randint(1, 50), rng.choice([1, 2, 4, 5, 8])
    right = [f"\\frac{{{num}}}{{{den}}}", f"{num}/{den}", str(num / den).rstrip("0").rstrip(".")]
    if den == 1:
        right = [str(num), f"{num}.0", str(num)]
    symbolic = ["x+1", "1+x", "2x+2", "\\sqrt{2}", "\\frac{\\sqrt{2}}{2}"]
    out: list[str | None] = []
    for _ in range(K):
        r = rng.random()
        if r < 0.55:
            out.append(rng.choice(right))
        elif r < 0.75:
            out.append(str(rng.randint(1, 60)))
        elif r < 0.85:
            out.append(f"{num + 1}/{den}" if den > 1 else str(num + 1))
        elif r < 0.93 and problem % 5 == 0:
            out.append(rng.choice(symbolic))
        else:
            out.append(None)
    return out


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    from cascadec.runtime import equivalence as E
    from cascadec.runtime.voting import Ballot, tally

    n = 50 if args.smoke else 1000
    rng = random.Random(0)
    votes = [[Ballot(a) for a in ballots_for(rng, i)] for i in range(n)]
    checks = [0]
    eq = E.Equivalence()
    same = eq.same

    def counting_same(a: str, b: str) -> bool:
        checks[0] += 1
        return same(a, b)

    eq.same = counting_same  # type: ignore[method-assign]
    eq.warm_up()
    eq.prepare([("1", "x")])  # workers up and sympy imported before timing
    E._cache.clear()
    E._normal.cache_clear()
    t0 = time.perf_counter()
    # as the executor does: every pair of the batch to the workers at once, then the votes
    distinct_by_problem = [sorted({b.answer for b in v if b.answer is not None}) for v in votes]
    eq.prepare(
        ((a, b) for ans in distinct_by_problem for i, a in enumerate(ans) for b in ans[i + 1 :]),
        both_ways=True,
    )
    for v in votes:
        tally(v, eq)
    uncached = time.perf_counter() - t0
    first_checks = checks[0]
    t0 = time.perf_counter()
    for v in votes:
        tally(v, eq)
    cached = time.perf_counter() - t0

    from math_verify import parse, verify

    pairs = []
    for v in votes:
        distinct = sorted({b.answer for b in v if b.answer is not None})
        pairs += [(a, b) for i, a in enumerate(distinct) for b in distinct[i + 1 :]]
    t0 = time.perf_counter()
    for a, b in pairs:
        pa, pb = parse("\\boxed{" + a + "}"), parse("\\boxed{" + b + "}")
        verify(pa, pb)
        verify(pb, pa)
    mv = time.perf_counter() - t0
    ours_rate = first_checks / uncached
    mv_rate = len(pairs) / mv if pairs else float("inf")
    figures = {
        "vote_checks_per_second_cached": round(first_checks / cached, 1),
        "vote_vs_math_verify_speedup": round(ours_rate / mv_rate, 2),
    }
    absolute = {
        "problems": n,
        "samples": n * K,
        "checks": first_checks,
        "pairs_to_math_verify": eq.pairs_verified,
        "uncached_seconds": round(uncached, 3),
        "cached_seconds": round(cached, 4),
        "math_verify_seconds": round(mv, 3),
        "uncached_checks_per_second": round(ours_rate, 1),
        "math_verify_pairs_per_second": round(mv_rate, 1),
        "vote_ms_per_sample_uncached": round(1000 * uncached / (n * K), 4),
    }
    print(absolute)
    emit(args, figures, absolute)
    E.shutdown()


if __name__ == "__main__":
    main()
