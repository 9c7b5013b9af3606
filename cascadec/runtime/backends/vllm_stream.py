"""The streaming side of the vLLM worker: the engine's request loop, and a completion as sample fields.

:class:`Stream` drives ``add_request`` / ``step`` / ``abort_request`` so that one sample can be
aborted mid-generation (online termination); :func:`sample_fields` turns a finished vLLM
completion into the tuple the parent makes a :class:`~cascadec.runtime.backends.base.Sample` of,
for the batch path (``vllm_engine.generate``) and the stream alike, and :func:`running_tokens` the
token logprobs of a completion still running. Used by the offline worker (``vllm_engine.main``)
and the Ray replicas. Only the standard library is imported at module level, as in
``vllm_engine``: the parent imports these modules too.
"""

from __future__ import annotations


def sample_fields(completion, text: str, num_logprobs: int) -> tuple:
    """(text, num_tokens, finish_reason, chosen logprobs, entropies, token confidences) of one completion."""
    finish = "stop" if completion.finish_reason == "stop" else "length"
    token_ids = list(completion.token_ids)
    if not num_logprobs or completion.logprobs is None:
        return (text, len(token_ids), finish, None, None, None)
    from cascadec.runtime.backends.base import top_logprobs_entropy
    from cascadec.runtime.confidence import token_confidence

    chosen, entropies, confidences = [], [], []
    for pos, token in enumerate(token_ids):
        top = position_logprobs(completion.logprobs, pos)
        chosen.append(top.get(token, next(iter(top.values()), float("nan"))))
        entropies.append(top_logprobs_entropy(top.values()))
        confidences.append(token_confidence(top.values(), num_logprobs))
    return (text, len(token_ids), finish, tuple(chosen), tuple(entropies), tuple(confidences))


def position_logprobs(logprobs, pos: int) -> dict[int, float]:
    """{token id: logprob} at one position, from FlatLogprobs or a list of dicts."""
    if hasattr(logprobs, "start_indices"):
        s, e = logprobs.start_indices[pos], logprobs.end_indices[pos]
        return dict(zip(logprobs.token_ids[s:e], logprobs.logprobs[s:e], strict=True))
    return {tok: lp.logprob for tok, lp in (logprobs[pos] or {}).items()}


class Stream:
    """Drive the engine's request loop (add_request / step / abort_request) for one stream.

    Every sample is its own engine request (``n=1``, seed ``request seed + index``: vLLM's own
    seed for child ``index`` of an ``n``-sample request, so the samples are the same as a batch
    ``generate``'s) so that one sample can be aborted. Greedy requests run once and are copied.
    Events: ``(request id, index, sample tuple or None, new chosen-token logprobs, their token
    confidences)``. Serves
    until nothing is in flight and no message waits; returns False when asked to close.
    """

    def __init__(self, llm, conn, num_logprobs: int, max_model_len: int):
        self.llm, self.conn = llm, conn
        self.engine = llm.llm_engine
        self.tokenizer = llm.get_tokenizer()
        self.num_logprobs = num_logprobs
        self.max_model_len = max_model_len
        self.live: dict[str, dict] = {}  # engine request id -> what it stands for
        self.events: list[tuple] = []

    def serve(self, kind: str, body) -> bool:
        if not self.handle(kind, body):
            return False
        while self.live or self.events:
            while self.conn.poll(0):
                if not self.handle(*self.conn.recv()):
                    return False
            if self.live:
                self.step()
            if self.events:
                self.conn.send(("events", self.events))
                self.events = []
        return True

    def handle(self, kind: str, body) -> bool:
        if kind == "close":
            return False
        if kind == "submit":
            requests, stream_tokens = body
            for req in requests:
                self.add(req, stream_tokens)
        elif kind == "abort":
            rid, index = body
            for eid, info in list(self.live.items()):
                if info["rid"] == rid and (index is None or index in info["indices"]):
                    self.engine.abort_request([eid])
                    del self.live[eid]
                    self.finish(info, info.get("last"), "abort")
        else:
            raise ValueError(f"unexpected message {kind!r} while streaming")
        return True

    def add(self, req: dict, stream_tokens: bool) -> None:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        if len(self.tokenizer.encode(req["prompt"])) >= self.max_model_len:
            empty = () if self.num_logprobs else None
            self.events.extend(
                (req["id"], i, ("", 0, "length", empty, empty, empty), (), ()) for i in range(req["n"])
            )
            return
        greedy = req["temperature"] <= 0
        flat_ok = "flat_logprobs" in getattr(SamplingParams, "__struct_fields__", ())
        kind = RequestOutputKind.CUMULATIVE if stream_tokens else RequestOutputKind.FINAL_ONLY
        for i in range(1 if greedy else req["n"]):
            params = SamplingParams(
                n=1,
                temperature=0.0 if greedy else req["temperature"],
                top_p=1.0 if greedy else req["top_p"],
                max_tokens=req["max_tokens"],
                seed=None if req["seed"] is None else req["seed"] + i,
                logprobs=self.num_logprobs or None,
                detokenize=False,
                output_kind=kind,
                **({"flat_logprobs": True} if flat_ok else {}),
            )
            eid = f"{req['id']}#{i}"
            indices = list(range(req["n"])) if greedy else [i]
            self.live[eid] = {"rid": req["id"], "indices": indices, "tokens": stream_tokens, "sent": 0}
            self.engine.add_request(eid, req["prompt"], params)

    def step(self) -> None:
        for out in self.engine.step():
            info = self.live.get(out.request_id)
            if info is None or not out.outputs:
                continue
            completion = out.outputs[0]
            info["last"] = completion
            if out.finished:
                del self.live[out.request_id]
                self.finish(info, completion, None)
            elif info["tokens"] and completion.logprobs is not None:
                chosen, confidences = running_tokens(completion, info["sent"], self.num_logprobs)
                if chosen:
                    info["sent"] += len(chosen)
                    self.events.extend((info["rid"], i, None, chosen, confidences) for i in info["indices"])

    def finish(self, info: dict, completion, reason: str | None) -> None:
        if completion is None:
            sample = ("", 0, reason or "stop", None, None)
        else:
            text = self.tokenizer.decode(list(completion.token_ids), skip_special_tokens=True)
            sample = sample_fields(completion, text, self.num_logprobs)
            if reason is not None:
                sample = (sample[0], sample[1], reason, *sample[3:])
        self.events.extend((info["rid"], i, sample, (), ()) for i in info["indices"])


def running_tokens(completion, start: int, num_logprobs: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Chosen-token logprobs and token confidences of a running completion from ``start`` on
    (computed as :func:`sample_fields` computes them for the finished sample)."""
    from cascadec.runtime.confidence import token_confidence

    token_ids = list(completion.token_ids)
    chosen, confidences = [], []
    for pos in range(start, len(token_ids)):
        top = position_logprobs(completion.logprobs, pos)
        chosen.append(top.get(token_ids[pos], next(iter(top.values()), float("nan"))))
        confidences.append(token_confidence(top.values(), num_logprobs))
    return tuple(chosen), tuple(confidences)
