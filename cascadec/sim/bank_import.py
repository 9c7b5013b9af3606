"""``cascadec bank import``: recorded outputs of any models → an ordinary sample bank.

Files in the open per-sample format or an adapter's layout (:mod:`cascadec.sim.import_formats`,
:mod:`cascadec.sim.import_adapters`) become ``BANK/samples.parquet`` (the replay schema, written
by :func:`cascadec.runtime.backends.replay.write_bank`), ``BANK/import.json`` (the report) and,
without ``--models``, ``BANK/models.yaml`` (a registry of the models seen). The rules:

- **problems**: a row's ``id`` names a problem of ``--data``; a row without a known id is
  matched by its problem text (whitespace-insensitive); an OpenAI ``custom_id`` by its end
  (``gsm8k-17`` → ``17``). Anything else is an error naming the file and row.
- **models**: a row's model is a registry id or alias (``--models``); the bank holds the id.
- **samples**: ``sample`` when given, else file order per (problem, model, temperature); a
  duplicate (problem, model, temperature, sample) is an error.
- **text**: the completion; a row with only ``answer`` gets the text ``\\boxed{answer}``.
- **tokens**: ``completion_tokens`` when given, else **estimated as ceil(characters / 4)** of
  the text (OpenAI's rule of thumb for English) and flagged ``tokens_estimated``; missing
  ``prompt_tokens`` likewise from the prompt the file shows (lm-eval), else from the problem
  text plus ``prompt_overhead`` tokens (a few-shot prefix, a system prompt), flagged
  ``prompt_tokens_estimated``.
- **cost**: the file's ``cost`` when recorded; else, with a priced registry, prompt tokens ×
  input price + completion tokens × output price; with a params registry none (the simulator
  prices tokens × params). Recorded costs need a priced registry (one cost scale).

Nothing is written unless every row is good: the bank is built in a temporary folder beside
``--out`` and renamed into place at the end.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cascadec.core.answer_format import AnswerFormat
from cascadec.errors import DataError
from cascadec.limits import MAX_SAMPLE_CHARS
from cascadec.outputs import RUN, OwnedDir, clear
from cascadec.registry import ModelRegistry, load_registry, resolve_registry
from cascadec.runtime.backends.replay import BANK_FILE, write_bank
from cascadec.runtime.data import Problem, problems_from_frame, read_table
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.overwrite import refuse_existing, replace_run
from cascadec.runtime.rundir import check_out_dir
from cascadec.sim.bank import bank_hash
from cascadec.sim.import_adapters import read_outputs
from cascadec.sim.import_formats import Parsed
from cascadec.sim.import_grade import grade, import_report
from cascadec.sim.import_registry import REGISTRY_FILE, generated_registry

REPORT_FILE = "import.json"
CHARS_PER_TOKEN = 4  # the estimation rule: ceil(characters / 4)


@dataclass
class Imported:
    bank: Path
    report: dict
    frame: pd.DataFrame = field(repr=False)


def _where(frame: pd.DataFrame, i: int) -> str:
    return f"{frame['file'].iat[i]}: row {int(frame['row'].iat[i])}"


def _first(frame: pd.DataFrame, mask, message: str):
    bad = np.flatnonzero(np.asarray(mask, dtype=bool))
    if len(bad):
        raise DataError(message.format(**frame.iloc[bad[0]].to_dict()), where=_where(frame, int(bad[0])))


def _norm(text) -> str | None:
    return " ".join(str(text).split()) if isinstance(text, str) else None


def resolve_problems(frame: pd.DataFrame, problems: dict[str, Problem], data: str) -> tuple[np.ndarray, dict]:
    """Each row's problem id: its id, else its problem text, else (OpenAI) the end of its id."""
    ids = frame["id"]
    out = ids.where(ids.isin(problems.keys())).to_numpy(dtype=object, copy=True)
    counts = {"by_id": int(pd.notna(out).sum()), "by_text": 0, "by_id_tail": 0}
    todo = np.flatnonzero(pd.isna(out))
    if not len(todo):
        return out, counts
    by_text: dict[str | None, list[str]] = {}
    for pid, p in problems.items():
        by_text.setdefault(_norm(p.problem), []).append(pid)
    tails = frame["id_tail"] if "id_tail" in frame else pd.Series([None] * len(frame))
    for i in todo:
        ident, text, tail = ids.iat[i], frame["problem_text"].iat[i], tails.iat[i]
        found = by_text.get(_norm(text)) if text is not None else None
        if found and len(found) == 1:
            out[i] = found[0]
            counts["by_text"] += 1
        elif tail is not None and tail in problems:
            out[i] = tail
            counts["by_id_tail"] += 1
        elif ident is not None:
            also = " (nor is its problem text there)" if text is not None else ""
            raise DataError(f"unknown problem id {ident!r}: not in {data}{also}", where=_where(frame, int(i)))
        else:
            what = "its problem text is not in" if text is not None else "no id or problem text to find it in"
            raise DataError(f"which problem? {what} {data}", where=_where(frame, int(i)))
    return out, counts


def resolve_models(frame: pd.DataFrame, registry: ModelRegistry) -> list[str]:
    """Each row's model as the registry's id (a name may be an id or an alias)."""
    ids: dict[str, str | None] = {}
    for name in frame["model"].unique():
        entry = registry.get(name) if isinstance(name, str) else None
        ids[name] = entry.id if entry is not None else None
    mapped = frame["model"].map(ids)
    unknown = mapped.isna().to_numpy()
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        name = frame["model"].iat[i]
        hint = registry.close_matches(str(name)) if isinstance(name, str) else []
        known = ", ".join(e.id for e in registry.models)
        more = f"; did you mean {' or '.join(hint)}?" if hint else f"; it has: {known}"
        what = "no model name (give --model)" if name is None else f"model {name!r} is not in the registry"
        raise DataError(f"{what} {registry.source}{more}", where=_where(frame, i))
    return mapped.tolist()


def number_samples(frame: pd.DataFrame) -> np.ndarray:
    """``sample`` where given, else file order per (problem, model, temperature), after the given ones."""
    temp = frame["temperature"].fillna(-1.0)
    keys = [frame["problem_id"], frame["bank_model"], temp]
    given = frame["sample"].notna()
    order = frame[~given].groupby(keys, sort=False).cumcount() if (~given).any() else pd.Series(dtype="int64")
    top = frame["sample"].where(given).groupby(keys, sort=False).transform("max").fillna(-1.0)
    index = frame["sample"].copy()
    index[~given] = order + top[~given] + 1
    out = index.astype("int64").to_numpy()
    dup = pd.DataFrame({"p": frame["problem_id"], "m": frame["bank_model"], "t": temp, "s": out}).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"duplicate sample: problem {frame['problem_id'].iat[i]!r}, model {frame['bank_model'].iat[i]!r}, "
            f"sample {out[i]} already given by an earlier row",
            where=_where(frame, i),
        )
    return out


def estimate_tokens(chars: pd.Series) -> np.ndarray:
    return np.ceil(chars.to_numpy(dtype=float) / CHARS_PER_TOKEN).astype("int64")


def _costs(frame: pd.DataFrame, registry: ModelRegistry | None) -> np.ndarray:
    """Each row's cost: recorded, else priced from tokens (priced registry), else NaN (params)."""
    recorded = frame["cost"].to_numpy(dtype=float)
    if registry is None or not registry.priced:
        if registry is not None and not np.isnan(recorded).all():
            i = int(np.flatnonzero(~np.isnan(recorded))[0])
            raise DataError(
                f"this row records a cost, but the registry {registry.source} has no prices (its costs "
                "are params): one cost scale; give its models a price, or leave out the cost column",
                where=_where(frame, i),
            )
        return recorded
    rates = {e.id: e.price.per_token() for e in registry.models if e.price is not None}
    inp = frame["bank_model"].map({m: r[0] for m, r in rates.items()}).to_numpy(dtype=float)
    out = frame["bank_model"].map({m: r[1] for m, r in rates.items()}).to_numpy(dtype=float)
    priced = frame["prompt_tokens"].to_numpy(float) * frame["prompt_share"].to_numpy(float) * inp
    priced += frame["num_tokens"].to_numpy(float) * out
    return np.where(np.isnan(recorded), priced, recorded)


def _primary_score(frame: pd.DataFrame, score: str | None) -> tuple[str | None, list[str]]:
    """Which column becomes the bank's ``score``: ``--score NAME``, the file's ``score``, or its only ``score_*``."""
    named = [c for c in frame.columns if c.startswith("score_")]
    if score is not None:
        column = score if score == "score" else f"score_{score.removeprefix('score_')}"
        if column not in frame.columns:
            have = ", ".join(c.removeprefix("score_") for c in named) or "none"
            raise DataError(f"--score {score}: no such score column (scores: {have})", code="E900")
        return column, []
    if "score" in frame.columns:
        return "score", []
    if len(named) == 1:
        return named[0], []
    notes = [f"several score columns ({', '.join(named)}): none is the primary score; pick one with --score"]
    return None, notes if named else []


def import_bank(
    files: list[str | Path],
    *,
    data: str | Path,
    out: str | Path,
    models: str | Path | ModelRegistry | None = None,
    fmt: str = "auto",
    score: str | None = None,
    model: str | None = None,
    temperature: float | None = None,
    prompt_overhead: int = 0,
    answer: AnswerFormat | str = AnswerFormat.BOXED_OR_FINAL_LINE,
    equivalence: str = "math",
    overwrite: bool = False,
    zstd: bool = False,
) -> Imported:
    """Import recorded outputs into a bank directory ``out`` (see the module docstring)."""
    out = Path(out)
    fmt_answer = AnswerFormat(answer)
    inputs = [*files, data, models if isinstance(models, str | Path) else None]
    check_out_dir(out, inputs)  # --out holds nothing but cascadec's own files (or nothing)
    if not overwrite:
        refuse_existing(out, what="a bank or run")
    problem_list = problems_from_frame(read_table(data), source=str(data))
    problems = {p.id: p for p in problem_list}
    parsed: list[Parsed] = [read_outputs(Path(f), fmt, model) for f in files]
    frame = pd.concat([p.frame for p in parsed], ignore_index=True)
    frame["problem_id"], matched = resolve_problems(frame, problems, str(data))
    if model is not None:
        frame["model"] = model
    registry = (
        resolve_registry(models) if models is not None and not isinstance(models, ModelRegistry) else models
    )
    frame["bank_model"] = resolve_models(frame, registry) if registry is not None else frame["model"]
    _first(frame, frame["bank_model"].isna(), "no model name: give --model")
    if temperature is not None:
        frame["temperature"] = frame["temperature"].fillna(float(temperature))
    frame["sample_index"] = number_samples(frame)
    # text: the completion, or the file's answer boxed; the file's answer is kept either way
    has_text = frame["text"].notna()
    _first(frame, ~has_text & frame["answer"].isna(), "a sample needs a text or an answer")
    frame["source_answer"] = frame["source_answer"].where(
        frame["source_answer"].notna() | ~has_text, frame["answer"]
    )
    frame["text"] = frame["text"].where(has_text, "\\boxed{" + frame["answer"].fillna("") + "}")
    lengths = frame["text"].str.len()
    _first(frame, lengths > MAX_SAMPLE_CHARS, f"the text is over {MAX_SAMPLE_CHARS} characters")
    frame["finish_reason"] = frame["finish_reason"].fillna("stop")
    # tokens: recorded, else estimated as ceil(chars / 4)
    estimated = frame["completion_tokens"].isna()
    frame["num_tokens"] = np.where(
        estimated, estimate_tokens(lengths), frame["completion_tokens"].fillna(0)
    ).astype("int64")
    frame["tokens_estimated"] = estimated.to_numpy()
    problem_chars = frame["problem_id"].map({pid: len(p.problem) for pid, p in problems.items()})
    prompt_chars = frame["prompt_chars"].fillna(problem_chars)
    prompt_estimated = frame["prompt_tokens"].isna()
    frame["prompt_tokens_estimated"] = prompt_estimated.to_numpy()
    estimate = estimate_tokens(prompt_chars) + np.where(frame["prompt_chars"].isna(), int(prompt_overhead), 0)
    frame["prompt_tokens"] = frame["prompt_tokens"].where(~prompt_estimated, estimate)
    # costs: recorded, priced, or (generated registry) the registry follows the recorded ones
    written_registry = None
    notes: list[str] = [n for p in parsed for n in p.notes]
    if registry is None:
        frame["completion_tokens"] = frame["num_tokens"]
        written_registry, reg_notes = generated_registry(frame, [str(f) for f in files])
        registry = ModelRegistry(**yaml.safe_load(written_registry), source=REGISTRY_FILE + " (generated)")
        notes += reg_notes
    frame["cost"] = _costs(frame, registry)
    primary, score_notes = _primary_score(frame, score)
    notes += score_notes
    answers, correct = grade(
        frame["text"].tolist(),
        (frame["finish_reason"] == "stop").to_numpy(),
        frame["problem_id"].tolist(),
        problems,
        fmt_answer,
        Equivalence(equivalence),
    )
    frame["answer"], frame["correct"] = answers, correct
    bank = _bank_frame(frame, primary)
    report = import_report(
        frame, bank, parsed, problems, files, data, registry, matched, notes, primary, fmt_answer
    )
    report["estimation"]["rule"] = f"tokens = ceil(characters / {CHARS_PER_TOKEN})"
    _write(out, bank, report, written_registry, overwrite, zstd)
    return Imported(out / BANK_FILE, report, bank)


def _bank_frame(frame: pd.DataFrame, primary: str | None) -> pd.DataFrame:
    """The replay schema plus the columns replay ignores, in a stable order (model, problem, T, sample)."""
    cols = {
        "model": frame["bank_model"].astype(str),
        "problem_id": frame["problem_id"].astype(str),
        "sample_index": frame["sample_index"],
        "text": frame["text"],
        "num_tokens": frame["num_tokens"],
        "finish_reason": frame["finish_reason"],
    }
    for name in ("logprobs", "confidences"):
        if frame[name].notna().any():
            cols[name] = frame[name]
    cols["temperature"] = frame["temperature"]
    if primary is not None:
        cols["score"] = frame[primary].astype("Float64")
    if frame["cost"].notna().any():
        cols["cost"] = pd.array(frame["cost"].to_numpy(float), dtype="Float64")
    cols["prompt_tokens"] = frame["prompt_tokens"].astype("Int64")
    cols["tokens_estimated"] = frame["tokens_estimated"].astype(bool)
    cols["prompt_tokens_estimated"] = frame["prompt_tokens_estimated"].astype(bool)
    for name in frame.columns:
        if name.startswith("score_"):
            cols[name] = frame[name].astype("Float64")
    cols["source_answer"] = frame["source_answer"]
    cols["source_correct"] = frame["source_correct"].astype("boolean")
    cols["answer"] = frame["answer"]
    cols["correct"] = frame["correct"].astype("boolean")
    bank = pd.DataFrame(cols)
    order = {pid: i for i, pid in enumerate(pd.unique(frame["problem_id"]))}
    keys = pd.DataFrame(
        {
            "m": bank["model"],
            "p": bank["problem_id"].map(order),
            "t": bank["temperature"].fillna(-1.0),
            "s": bank["sample_index"],
        }
    )
    return bank.iloc[np.lexsort([keys["s"], keys["t"], keys["p"], keys["m"]])].reset_index(drop=True)


def _write(
    out: Path, bank: pd.DataFrame, report: dict, registry_text: str | None, overwrite: bool, zstd: bool
) -> None:
    """Everything into a temporary folder beside ``out`` (an owned folder: every file recorded, so
    ``--overwrite`` can replace it later), then renamed into place (``zstd``: the parquet at zstd
    level 19, half the size, for banks that are committed)."""

    def parquet(path: Path) -> None:
        write_bank(bank, path)
        if zstd:
            import pyarrow.parquet as pq

            pq.write_table(pq.read_table(path), path, compression="zstd", compression_level=19)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.import-{os.getpid()}"
    try:
        with OwnedDir(tmp, RUN, "nothing was written") as owned:
            owned.write(BANK_FILE, parquet)
            report["bank_sha256"] = bank_hash(tmp)
            if registry_text is not None:
                owned.write(REGISTRY_FILE, registry_text.encode("utf-8"))
                load_registry(tmp / REGISTRY_FILE)  # what it wrote must load
            owned.write(REPORT_FILE, (json.dumps(report, indent=2, default=str) + "\n").encode("utf-8"))
        if overwrite:
            replace_run(out)  # exactly the files cascadec wrote there; anything else refuses
        refuse_existing(out, what="a bank or run")
        if out.is_dir():
            out.rmdir()  # empty
        os.rename(tmp, out)
    except BaseException:
        if tmp.exists():
            clear(tmp, RUN, "the import was abandoned")  # the temporary folder's own files, then it
        raise
