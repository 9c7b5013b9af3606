"""The one seed rule: which seed a sample is drawn with.

A sample's seed depends only on (spec seed, model, problem, temperature, sample index) —
never on the strategy, the tier's position in it, or the round it was asked in. So:

* a tier's samples are the same whether asked at once or in rounds (early stopping,
  retries, explorations continue the numbering);
* every strategy over the same problems draws paired samples (common random numbers);
* one bank, recorded with k samples of each model at once, replays every plan exactly —
  replay keys its bank by (problem, model, temperature, sample index), the same key.

vLLM's convention is kept: child ``i`` of an ``n``-sample request with seed ``s`` uses
``s + i``. So sample ``i`` uses ``base + i`` and a request for samples ``f .. f+n-1`` is sent
with seed ``base + f`` (:func:`request_seed`, the only place that adds the offset; every
backend calls it). ``base`` keeps 30 bits so ``base + i`` stays a positive signed 32-bit
integer for any index below 2**30, whatever range a backend accepts.
"""

from __future__ import annotations

import hashlib

BASE_BITS = 30
MAX_SAMPLE_INDEX = 2**30 - 1  # base + index < 2**31 for every index up to this


def base_seed(spec_seed: int, model: str, problem_id: str, temperature: float) -> int:
    """Seed of sample 0 of ``model`` on ``problem_id`` at ``temperature`` (stable across runs).

    The temperature enters rounded to 6 decimals, as plans print it, so 0.7 and 0.70000001
    share samples; greedy (T = 0) asks are copies anyway.
    """
    key = f"{int(spec_seed)}|{model}|{problem_id}|{float(temperature):.6f}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << BASE_BITS) - 1)


def sample_seed(base: int, index: int) -> int:
    """Seed of sample ``index`` (vLLM gives child ``i`` of a request seeded ``s`` the seed ``s + i``)."""
    if not 0 <= index <= MAX_SAMPLE_INDEX:
        raise ValueError(f"sample index must be in [0, {MAX_SAMPLE_INDEX}], got {index}")
    return int(base) + int(index)


def request_seed(base: int | None, first_sample: int) -> int | None:
    """Engine seed of a request for samples ``first_sample, first_sample + 1, ...`` (None: unseeded)."""
    return None if base is None else sample_seed(base, first_sample)
