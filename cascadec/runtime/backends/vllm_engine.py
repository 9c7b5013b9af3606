"""The engine side of the vLLM backends: build one ``vllm.LLM``, answer batches, shut it down.

``build_engine``, ``generate`` and ``shutdown_engine`` are shared by the offline worker process
(``main``, below) and the Ray actors (``ray_actors``).

``main`` is the process behind :class:`VLLMBackend`. Besides whole batches (``generate``) it
streams (:class:`~cascadec.runtime.backends.vllm_stream.Stream`): requests are added to the engine
as they are submitted, the engine is stepped, each sample is sent as soon as it finishes
(``("events", [...])``) and a sample or a request can be aborted between steps.
Runs in a spawned process that makes itself a process-group leader, so the parent can end
it and every engine process vLLM starts under it at once. It exits when the parent asks,
when the pipe breaks, or when the parent disappears (a ``kill -9`` of the executor must not
leave a model in memory). Messages to the parent: ``("result", body)``, ``("progress", k)``
and ``("error", traceback text)``; after an error the worker exits.

Only the standard library is imported at module level: the parent imports this module too.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback

from cascadec.runtime.backends.vllm_stream import Stream, sample_fields


def main(conn, config: dict) -> None:
    """Entry point of the worker process (``multiprocessing`` spawn target)."""
    try:
        os.setsid()
    except OSError:
        pass
    _redirect_output(config.get("log_path"))
    _watch_parent(os.getppid())
    try:
        llm, info = build_engine(config)
        conn.send(("result", info))
    except BaseException:
        _send_quietly(conn, ("error", traceback.format_exc()))
        sys.exit(1)
    try:
        while True:
            try:
                kind, body = conn.recv()
            except (EOFError, OSError):
                break
            if kind == "close":
                break
            if kind == "generate":
                conn.send(("result", generate(llm, body, conn, config["logprobs"], info["max_model_len"])))
            elif kind in ("submit", "abort"):
                if not Stream(llm, conn, config["logprobs"], info["max_model_len"]).serve(kind, body):
                    break
    except BaseException:
        _send_quietly(conn, ("error", traceback.format_exc()))
        shutdown_engine(llm)
        sys.exit(1)
    shutdown_engine(llm)


def _redirect_output(log_path: str | None) -> None:
    """Send the worker's (and its children's) stdout/stderr to the log file, at fd level."""
    if not log_path:
        return
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _watch_parent(parent_pid: int) -> None:
    """Kill this process group when the parent dies (a blocked ``generate`` never notices)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, name="cascadec-parent-watch", daemon=True).start()


def _send_quietly(conn, msg) -> None:
    if msg[0] == "error":  # keep the traceback in the log too
        print(msg[1], file=sys.stderr, flush=True)
    try:
        conn.send(msg)
    except (OSError, EOFError):
        pass


def build_engine(config: dict):
    """Import vLLM (quietly unless verbose), pick per-platform settings, build the LLM."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if config["verbose"] else "WARNING")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    single = (config["model"].get("tensor_parallel_size") or 1) == 1
    if config.get("cpu_threads") and single and _vllm_cpu():
        # read once, when torch loads its OpenMP runtime; vLLM's multiprocess executor (more than
        # one worker) pins its workers and sets their threads itself
        os.environ.setdefault("OMP_NUM_THREADS", str(config["cpu_threads"]))
    started = time.monotonic()
    import torch
    import vllm
    from vllm.platforms import current_platform

    model = config["model"]
    on_cpu = current_platform.is_cpu()
    kwargs: dict = {
        "model": config["path"],
        "tokenizer": config["path"],
        "dtype": model.get("dtype") or "auto",
        "tensor_parallel_size": model.get("tensor_parallel_size") or 1,
        "seed": config["seed"],
        "trust_remote_code": bool(model.get("trust_remote_code")),  # off unless the registry says so
    }
    if model.get("max_model_len"):
        kwargs["max_model_len"] = model["max_model_len"]
    memory = model.get("gpu_memory_utilization") or config["gpu_memory_utilization"]
    eager = config["enforce_eager"]
    if on_cpu:
        # CPU: the KV cache size comes from VLLM_CPU_KVCACHE_SPACE (GiB); the "gpu" memory
        # fraction is a fraction of RAM and only checked at startup.
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, config["cpu_kv_cache_gib"])))
        kwargs["gpu_memory_utilization"] = memory or 0.1
        # vllm-cpu's torch CPU generators cannot rewind, which a seeded request hits when
        # its prompt is split by chunked prefill: schedule whole prompts only.
        kwargs["enable_chunked_prefill"] = False
        kwargs["max_num_batched_tokens"] = max(
            4096, int(model.get("max_model_len") or _config_len(config["path"]))
        )
        kwargs["enforce_eager"] = True if eager is None else bool(eager)
        if kwargs["tensor_parallel_size"] == 1:
            # One CPU worker: run the engine core and the model in this process. The default
            # spawns two more processes that each import torch and vLLM again (~10 s of a
            # ~15 s load); on a GPU the separate core overlaps scheduling with the device, on
            # a CPU the same cores do both anyway. This process is already our worker.
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            kwargs["distributed_executor_backend"] = "uni"
    else:
        kwargs["gpu_memory_utilization"] = memory or 0.9
        kwargs["enforce_eager"] = False if eager is None else bool(eager)
    kwargs.update(config["engine_kwargs"])
    imported = time.monotonic()
    llm = vllm.LLM(**kwargs)
    loaded = time.monotonic()
    info = {
        "platform": "cpu" if on_cpu else str(current_platform.device_type),
        "vllm_version": vllm.__version__,
        "pid": os.getpid(),
        "max_model_len": int(llm.llm_engine.model_config.max_model_len),
        "import_s": round(imported - started, 2),
        "load_s": round(loaded - imported, 2),
        "cpu_threads": torch.get_num_threads() if on_cpu and single else None,
        "engine_args": {k: v for k, v in kwargs.items() if k not in ("model", "tokenizer")},
    }
    return llm, info


def _vllm_cpu() -> bool:
    """vLLM's CPU build (its distribution is ``vllm-cpu``), known before vLLM is imported."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("vllm-cpu")
    except PackageNotFoundError:
        return False
    return True


def _config_len(path: str) -> int:
    """``max_position_embeddings`` from a local config.json (0 when unknown)."""
    import json

    try:
        with open(os.path.join(path, "config.json")) as f:
            return int(json.load(f).get("max_position_embeddings") or 0)
    except (OSError, ValueError, TypeError):
        return 0


def generate(llm, requests: list[dict], conn, num_logprobs: int, max_model_len: int) -> list[list[tuple]]:
    """One ``llm.generate`` over every request; overlong prompts get truncated empty samples."""
    from vllm import SamplingParams

    tokenizer = llm.get_tokenizer()
    flat_ok = "flat_logprobs" in getattr(SamplingParams, "__struct_fields__", ())
    prompts, params, index = [], [], []
    rows: list[list[tuple] | None] = [None] * len(requests)
    for i, req in enumerate(requests):
        if len(tokenizer.encode(req["prompt"])) >= max_model_len:
            empty = () if num_logprobs else None
            rows[i] = [("", 0, "length", empty, empty, empty)] * req["n"]
            continue
        greedy = req["temperature"] <= 0
        extra = {"flat_logprobs": True} if flat_ok else {}
        params.append(
            SamplingParams(
                n=1 if greedy else req["n"],  # vLLM refuses n > 1 at T=0; greedy samples are copies
                temperature=0.0 if greedy else req["temperature"],
                top_p=1.0 if greedy else req["top_p"],
                max_tokens=req["max_tokens"],
                seed=req["seed"],
                logprobs=num_logprobs or None,
                detokenize=False,  # decoded below in one batch: ~1.6x faster on CPU with logprobs
                **extra,
            )
        )
        prompts.append(req["prompt"])
        index.append(i)
    skipped = len(requests) - len(index)
    if skipped:
        conn.send(("progress", skipped))
    if prompts:
        outputs = llm.generate(prompts, params, use_tqdm=_progress_bar(conn))
        completions = [c for out in outputs for c in out.outputs]
        decoded = iter(
            tokenizer.batch_decode([list(c.token_ids) for c in completions], skip_special_tokens=True)
        )
        for i, out in zip(index, outputs, strict=True):
            samples = [sample_fields(c, next(decoded), num_logprobs) for c in out.outputs]
            n = requests[i]["n"]
            rows[i] = samples * n if len(samples) == 1 and n > 1 else samples
    return rows


def _progress_bar(conn):
    """A tqdm stand-in for ``llm.generate(use_tqdm=...)`` that reports finished requests."""
    from tqdm import tqdm

    class _Report(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.update(file=open(os.devnull, "w"), mininterval=3600, disable=False)  # noqa: SIM115
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            # vLLM advances by the number of samples of a finished request: report requests.
            conn.send(("progress", 1))
            return super().update(n)

        def close(self):
            super().close()
            self.fp.close()

    return _Report


def shutdown_engine(llm) -> None:
    """Stop vLLM's engine processes before exiting (the parent kills the group anyway)."""
    try:
        llm.llm_engine.engine_core.shutdown()
    except Exception:
        pass
