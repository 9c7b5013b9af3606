"""The Ray backend on a real local Ray cluster: two vLLM replicas of a zoo model.

With the same seeds it must return exactly the offline backend's samples, whatever replica
served a request; a dead replica is a clear BackendError.
"""

import pytest

from cascadec.compiler import compile_markers
from cascadec.errors import BackendError
from cascadec.registry import load_registry, named_registry
from cascadec.runtime.backends.base import GenerationRequest
from cascadec.zoo.task import sample_problems

pytestmark = pytest.mark.integration

MARKER = "mv_0.034M_k4_t0.7"
MODEL = "cascadec-zoo/arith-0.034M"
N = 30


@pytest.fixture(scope="module")
def backend():
    pytest.importorskip("ray")
    pytest.importorskip("vllm")
    from cascadec.runtime.backends.ray_actors import RayBackend

    b = RayBackend(replicas=2)
    yield b
    b.close()


@pytest.fixture(scope="module")
def plan():
    return compile_markers([MARKER], registry=load_registry(named_registry("zoo")))[0]


def _requests():
    problems = sample_problems(N, 616)
    return [
        GenerationRequest(f"r{i}", p["id"], p["problem"], 4, 0.7, 0.8, 32, 1000 + i)
        for i, p in enumerate(problems)
    ]


def test_two_replicas_give_the_offline_samples(backend, plan, tmp_path):
    from cascadec.runtime.backends.vllm_offline import VLLMBackend

    backend.load(plan.models[MODEL])
    assert backend.info["replicas"] == 2
    seen = []
    ray_out = backend.generate(_requests(), seen.append)
    assert sum(seen) == N, "progress counts every request"
    offline = VLLMBackend(log_dir=tmp_path / "logs")
    try:
        offline.load(plan.models[MODEL])
        offline_out = offline.generate(_requests())
    finally:
        offline.close()
    assert [len(s) for s in ray_out] == [4] * N
    assert ray_out == offline_out, "same seeds, same samples, whichever replica served them"


def test_a_dead_replica_is_a_backend_error(backend, plan):
    import ray

    backend.load(plan.models[MODEL])  # still loaded: no new actors
    ray.kill(backend._actors[1])
    with pytest.raises(BackendError, match="a replica of cascadec-zoo/arith-0.034M failed"):
        backend.generate(_requests())
    assert backend.model is None, "closed: the next load starts afresh"


def test_more_replicas_than_the_cluster_holds_is_an_error_not_a_hang(plan):
    from cascadec.runtime.backends.ray_actors import RayBackend

    greedy = RayBackend(replicas=64)
    try:
        with pytest.raises(BackendError, match="64 replicas of cascadec-zoo/arith-0.034M need 64 CPUs"):
            greedy.load(plan.models[MODEL])
    finally:
        greedy.close()


def test_rounds_and_retries_replay_exactly_from_a_bank_recorded_at_once(backend, tmp_path):
    """On Ray replicas: a vote asked in rounds (early stop, retries) draws a bank's samples."""
    import pandas as pd
    from seed_checks import check_rounds_replay_from_a_bank

    check_rounds_replay_from_a_bank(backend, ["0.034M"], pd.DataFrame(sample_problems(N, 617)), tmp_path)


def test_online_termination_aborts_mid_generation_on_the_replicas(backend, plan):
    """Ray streams through the replicas' engine loops: an abort lands between two steps."""
    import pandas as pd
    from online_checks import check_online_saves_tokens

    frame = pd.DataFrame(sample_problems(6, 717))
    live, _ = check_online_saves_tokens(
        backend, plan.models[MODEL], frame, prompt=plan.strategies[0].prompt, max_tokens=32
    )
    assert backend.capabilities.stream_by_default is False  # only a run that watches tokens streams
