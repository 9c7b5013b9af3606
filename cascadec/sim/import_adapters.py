"""Adapters of ``cascadec bank import``: the layouts researchers' recorded outputs come in.

- ``lm-eval``: lm-evaluation-harness ``--log_samples`` JSONL (``samples_<task>_<date>.jsonl``):
  one line per (document, filter) with ``doc_id``, ``doc``, ``arguments``, ``resps`` (per
  request, the list of generations: several with ``repeats``), ``filtered_resps``, ``filter``
  and the metric (``exact_match``...). One line per document is read, the ``flexible-extract``
  filter's when there is one; its metric is the file's verdict when the document has one sample.
  The model is ``--model`` or the folder lm-eval wrote into (``org__name`` → ``org/name``).
- ``openai``: OpenAI batch output JSONL (``custom_id``, ``response.body`` a chat completion) or
  chat completions (JSON or JSONL, with ``custom_id`` or ``metadata.problem_id``). Each choice
  is a sample; ``logprobs.content[].logprob`` are kept, token confidences come from
  ``top_logprobs``; ``usage`` gives the token counts (a request's prompt shared by its choices).
  A ``custom_id`` that is no problem id is read from its end (``gsm8k-17`` → ``17``). Failed
  requests are skipped and counted.
- ``wide``: one row per problem, one column per model: ``<model>_response`` text columns (a
  ``<model>`` column beside it is the file's verdict, RouteLLM's layout), or object cells
  ``{solution|text|response|completion, is_correct}`` (grade-school-math's example solutions).
- ``per-model``: one JSONL per model, one record per problem (Faithful-CoT's ``{id, answer,
  completion, completions}``; Qwen2.5-Math's ``{idx, question, code|response: [...], pred,
  score: [verdicts], pred_score}``); the model is ``--model`` or the file's folder name.
"""

from __future__ import annotations

import re
from pathlib import Path

from cascadec.errors import DataError
from cascadec.runtime.confidence import token_confidence
from cascadec.runtime.validate import short
from cascadec.sim.import_formats import (
    Parsed,
    columns_of,
    first_record,
    jsonl_columns,
    kind,
    long_frame,
    pylist,
    read_samples,
    records,
)

FORMATS = ("samples", "lm-eval", "openai", "wide", "per-model")
ID_KEYS = ("id", "idx", "problem_id", "unique_id", "doc_id")
TEXT_KEYS = ("question", "problem", "query", "prompt", "Problem", "Question")
TEXT_CELL_KEYS = ("solution", "text", "response", "completion", "output", "content")
SAMPLES_KEYS = ("completions", "code", "responses", "response", "completion", "text", "output")


def read_outputs(path: Path, fmt: str = "auto", model: str | None = None) -> Parsed:
    """One file of recorded outputs as long rows, in ``fmt`` or the format its content shows."""
    if fmt not in ("auto", *FORMATS):
        raise DataError(f"unknown --format {fmt!r}; choose auto, {', '.join(FORMATS)}", code="E900")
    what = kind(path)
    if what in ("parquet", "csv"):
        cols = columns_of(path)
        fmt = detect_columns(path, cols) if fmt == "auto" else fmt
        if fmt == "samples":
            return read_samples(path, cols)
        if fmt == "wide":
            return read_wide(path, {name: pylist(values) for name, values in cols.items()})
        raise DataError(f"--format {fmt} reads JSON or JSONL files, not {what}", where=path, code="E900")
    head = first_record(path) if what == "jsonl" else None
    if head is not None and (fmt == "samples" or fmt == "auto" and detect_record(path, head) == "samples"):
        return read_samples(path, jsonl_columns(path))  # the open format: read by columns, fast
    recs = records(path)
    fmt = detect_record(path, recs[0]) if fmt == "auto" else fmt
    if fmt == "lm-eval":
        return read_lm_eval(path, recs, model)
    if fmt == "openai":
        return read_openai(path, recs, model)
    if fmt in ("samples", "wide"):
        names = list(dict.fromkeys(k for r in recs for k in r))
        cols = {name: [r.get(name) for r in recs] for name in names}
        return read_samples(path, cols) if fmt == "samples" else read_wide(path, cols)
    return read_per_model(path, recs, model)


def detect_columns(path: Path, cols: dict[str, list]) -> str:
    names = set(cols)
    if "model" in names and names & {"id", "problem_id"} and names & {"text", "answer"}:
        return "samples"
    if any(n.endswith("_response") for n in names) or any(_text_cell(first(pylist(cols[n]))) for n in names):
        return "wide"
    raise DataError(
        "cannot tell the format: not the open per-sample format (id, model, text|answer) nor a wide "
        f"table (<model>_response columns); columns: {', '.join(sorted(names))[:300]}; see --format",
        where=path,
    )


def detect_record(path: Path, rec: dict) -> str:
    keys = set(rec)
    if "custom_id" in keys or "choices" in keys or isinstance(rec.get("response"), dict):
        return "openai"
    if "doc_id" in keys and "resps" in keys:
        return "lm-eval"
    if "model" in keys and keys & {"id", "problem_id"} and keys & {"text", "answer"}:
        return "samples"
    if keys & set(SAMPLES_KEYS):
        return "per-model"
    if any(_text_cell(v) for v in rec.values()):
        return "wide"
    raise DataError(
        f"cannot tell the format of records with keys {', '.join(sorted(keys))[:300]}; see --format",
        where=path,
    )


def first(values: list):
    return next((v for v in values if v is not None), None)


def _text_cell(value) -> bool:
    return isinstance(value, dict) and any(isinstance(value.get(k), str) for k in TEXT_CELL_KEYS)


def _get(rec: dict, keys: tuple[str, ...]):
    return next((rec[k] for k in keys if rec.get(k) is not None), None)


def _parsed(path: Path, rows: list[int], cells: dict[str, list], fmt: str, verdict, notes) -> Parsed:
    if not rows:
        raise DataError("no samples found in the outputs file", where=path)
    where = lambda i: f"{path}: row {rows[i]}"  # noqa: E731
    return Parsed(long_frame(str(path), rows, cells, where), fmt, verdict, notes)


class Rows:
    """Column lists grown one sample at a time (absent values None)."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cells: dict[str, list] = {}

    def add(self, row: int, **values) -> None:
        n = len(self.rows)
        self.rows.append(row)
        for name, value in values.items():
            column = self.cells.setdefault(name, [None] * n)
            column.append(value)
        for column in self.cells.values():
            if len(column) == n:
                column.append(None)


# --- wide ----------------------------------------------------------------------------------
def read_wide(path: Path, cols: dict[str, list]) -> Parsed:
    n = len(next(iter(cols.values())))
    id_col = next((c for c in ID_KEYS if c in cols), None)
    text_col = next((c for c in TEXT_KEYS if c in cols), None)
    models = {c.removesuffix("_response"): c for c in cols if c.endswith("_response")}
    models |= {c: c for c in cols if c not in models.values() and _text_cell(first(cols[c]))}
    if not models:
        raise DataError("a wide table needs <model>_response columns or {solution, ...} cells", where=path)
    out = Rows()
    for model, col in models.items():
        verdict_col = cols.get(model) if col != model else None
        for i in range(n):
            cell = cols[col][i]
            verdict = verdict_col[i] if verdict_col is not None else None
            if isinstance(cell, dict):
                text = _get(cell, TEXT_CELL_KEYS)
                verdict = _get(cell, ("is_correct", "correct"))
            else:
                text = cell
            if text is None:
                continue
            ident = cols[id_col][i] if id_col else (None if text_col else str(i))
            out.add(
                i,
                id=ident,
                problem_text=cols[text_col][i] if text_col else None,
                model=model,
                text=text,
                source_correct=verdict,
            )
    notes = [] if id_col or text_col else ["no id or problem column: problems matched by row number"]
    has_verdicts = any(v is not None for v in out.cells.get("source_correct", []))
    return _parsed(path, out.rows, out.cells, "wide", "per-model columns" if has_verdicts else None, notes)


# --- one JSONL per model --------------------------------------------------------------------
def read_per_model(path: Path, recs: list[dict], model: str | None) -> Parsed:
    name = model or path.parent.name
    out = Rows()
    for i, r in enumerate(recs):
        texts = _get(r, SAMPLES_KEYS)
        texts = texts if isinstance(texts, list) else [texts]
        preds = r.get("pred") if isinstance(r.get("pred"), list) else None
        if preds is None and "answer" in r and len(texts) == 1:  # Faithful-CoT: the model's own answer
            preds = [r["answer"]]
        verdict = r.get("score") if isinstance(r.get("score"), list) else None
        if verdict is None and len(texts) == 1 and _get(r, ("is_correct", "correct")) is not None:
            verdict = [_get(r, ("is_correct", "correct"))]
        scores = r.get("pred_score") if isinstance(r.get("pred_score"), list) else None
        for j, text in enumerate(texts):
            score = scores[j] if scores is not None and j < len(scores) else None
            if isinstance(score, list) and len(score) == 1:
                score = score[0]
            out.add(
                i,
                id=_get(r, ID_KEYS),
                problem_text=_get(r, TEXT_KEYS),
                model=name,
                sample=j,
                text=text,
                source_answer=_item(preds, j),
                source_correct=_item(verdict, j),
                **({"score_pred_score": score} if scores is not None else {}),
            )
    has_verdicts = any(v is not None for v in out.cells.get("source_correct", []))
    notes = [] if model else [f"model named after the file's folder: {name!r}"]
    return _parsed(
        path, out.rows, out.cells, "per-model", "score/is_correct" if has_verdicts else None, notes
    )


def _item(values: list | None, j: int):
    return values[j] if values is not None and j < len(values) else None


# --- lm-evaluation-harness ------------------------------------------------------------------
def read_lm_eval(path: Path, recs: list[dict], model: str | None) -> Parsed:
    chosen: dict[str, tuple[int, dict]] = {}
    for i, r in enumerate(recs):
        key = str(r.get("doc_id"))
        flexible = r.get("filter") == "flexible-extract"
        if key not in chosen or (flexible and chosen[key][1].get("filter") != "flexible-extract"):
            chosen[key] = (i, r)
    name = model or path.parent.name.replace("__", "/")
    out = Rows()
    metric_used = None
    for i, r in chosen.values():
        texts = [t for req in r.get("resps") or [] for t in (req if isinstance(req, list) else [req])]
        prompt, gen = _lm_eval_arguments(r.get("arguments"))
        doc = r.get("doc") if isinstance(r.get("doc"), dict) else {}
        metric = next((m for m in ("exact_match", "acc", "correct") if m in r), None)
        metric_used = metric_used or metric
        one = len(texts) == 1
        filtered = r.get("filtered_resps") or []
        for j, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"resps holds {short(text)}, not generated text", where=f"{path}: row {i}")
            out.add(
                i,
                id=r.get("doc_id"),
                problem_text=_get(doc, TEXT_KEYS),
                model=name,
                sample=j,
                text=text,
                temperature=0.0 if gen.get("do_sample") is False else gen.get("temperature"),
                prompt_chars=len(prompt) if prompt else None,
                source_correct=r.get(metric) if metric and one else None,
                source_answer=filtered[0] if one and filtered and isinstance(filtered[0], str) else None,
            )
    notes = [f"model {name!r} from " + ("--model" if model else "the folder lm-eval wrote into")]
    if any(r.get("filter") for _, r in chosen.values()):
        notes.append("filter read: " + ", ".join(sorted({str(r.get("filter")) for _, r in chosen.values()})))
    return _parsed(path, out.rows, out.cells, "lm-eval", metric_used, notes)


def _lm_eval_arguments(args) -> tuple[str | None, dict]:
    """(prompt, generation kwargs) of a sample's first request, in either layout lm-eval wrote."""
    first_req = None
    if isinstance(args, list) and args:
        first_req = args[0]
    elif isinstance(args, dict) and args:
        first_req = next(iter(args.values()))
        if isinstance(first_req, dict):
            first_req = list(first_req.values())
    if not isinstance(first_req, list) or not first_req:
        return None, {}
    prompt = first_req[0] if isinstance(first_req[0], str) else None
    gen = first_req[1] if len(first_req) > 1 and isinstance(first_req[1], dict) else {}
    return prompt, gen


# --- OpenAI ---------------------------------------------------------------------------------
_ID_TAIL = re.compile(r"[-_:/#]([^-_:/#]+)$")


def read_openai(path: Path, recs: list[dict], model: str | None) -> Parsed:
    out = Rows()
    failed = 0
    for i, r in enumerate(recs):
        body = r
        if isinstance(r.get("response"), dict) or "custom_id" in r and "choices" not in r:
            resp = r.get("response") or {}
            if (
                r.get("error")
                or resp.get("status_code", 200) != 200
                or not isinstance(resp.get("body"), dict)
            ):
                failed += 1
                continue
            body = resp["body"]
        ident = r.get("custom_id") or _get(r.get("metadata") or {}, ("problem_id", "id"))
        if ident is None:
            raise DataError(
                "no custom_id or metadata.problem_id: which problem is this?", where=f"{path}: row {i}"
            )
        choices = body.get("choices")
        if not isinstance(choices, list):
            raise DataError("no choices list in the response body", where=f"{path}: row {i}")
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        n = len(choices)
        for c in sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0):
            if not isinstance(c, dict):
                raise DataError(f"a choice must be an object, got {short(c)}", where=f"{path}: row {i}")
            message = c.get("message") if isinstance(c.get("message"), dict) else {}
            text = message.get("content", c.get("text"))
            logprobs, confidences = _openai_logprobs(c.get("logprobs"))
            tokens = usage.get("completion_tokens") if n == 1 else (len(logprobs) if logprobs else None)
            out.add(
                i,
                id=ident,
                model=model or body.get("model"),
                text=text if text is not None else "",
                finish_reason=c.get("finish_reason"),
                prompt_tokens=usage.get("prompt_tokens"),
                prompt_share=1.0 / n,
                completion_tokens=tokens,
                logprobs=logprobs,
                confidences=confidences,
            )
    notes = [f"{failed} failed requests skipped"] if failed else []
    parsed = _parsed(path, out.rows, out.cells, "openai", None, notes)
    parsed.frame["id_tail"] = [_tail(v) for v in parsed.frame["id"]]
    return parsed


def _tail(ident: str | None) -> str | None:
    m = _ID_TAIL.search(ident) if ident else None
    return m.group(1) if m else None


def _openai_logprobs(lp) -> tuple[list | None, list | None]:
    content = lp.get("content") if isinstance(lp, dict) else None
    if not isinstance(content, list) or not content:
        return None, None
    logprobs = [min(0.0, t["logprob"]) for t in content if isinstance(t, dict) and _number(t.get("logprob"))]
    tops = [t.get("top_logprobs") for t in content if isinstance(t, dict)]
    confidences = None
    if tops and all(isinstance(t, list) and t for t in tops):
        confidences = [token_confidence([x.get("logprob") for x in t if isinstance(x, dict)]) for t in tops]
    return logprobs or None, confidences


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
