"""Sample banks: record every model once, replay any plan.

``cascadec bank build`` runs, for every model of a registry, a majority vote at the largest k
anyone will ask for (at each temperature asked for) plus one greedy sample per problem — one
ordinary mixed-strategy run, so it uses any backend, journals as it goes and resumes like a run.
The bank is the run's ``samples.parquet``; a bank directory is that run directory.

Replay serves sample ``i`` of (model, problem, temperature) to whoever asks for index ``i``,
so a tier with k samples reads indices ``0..k-1``, retries and rounds continue the numbering:
a bank with k samples replays every tier asking for at most k at a recorded temperature.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cascadec.errors import DataError
from cascadec.runtime.backends.replay import BANK_FILE, bank_path, read_bank


def bank_file(path: str | Path) -> Path:
    """The parquet file of a bank given as a file or as a bank (run) directory."""
    p = bank_path(path)
    if not p.is_file():
        raise DataError("no such sample bank (a bank is a parquet file or a bank directory)", where=path)
    return p


def load_bank(path: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A bank as a frame in the replay schema (a run's samples.parquet is converted)."""
    if isinstance(path, pd.DataFrame):
        return read_bank(path)
    return read_bank(bank_file(path))


def bank_hash(path: str | Path) -> str:
    """sha256 of the bank file's bytes: certificates name the exact evidence they rest on."""
    digest = hashlib.sha256()
    with open(bank_file(path), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class Coverage:
    """What a bank can replay: per (model, temperature), problems and samples per problem."""

    model: str
    temperature: float | None
    problems: int
    min_k: int
    max_k: int
    truncated: float  # share of samples cut at max_tokens


def coverage(bank: pd.DataFrame) -> list[Coverage]:
    frame = bank.copy()
    if "temperature" not in frame.columns:
        frame["temperature"] = float("nan")
    if "finish_reason" not in frame.columns:
        frame["finish_reason"] = "stop"
    out = []
    keys = frame["temperature"].fillna(-1.0)
    for (model, temp), part in frame.groupby([frame["model"].astype(str), keys], sort=True):
        per = part.groupby(part["problem_id"].astype(str))["sample_index"].nunique()
        out.append(
            Coverage(
                model=str(model),
                temperature=None if temp < 0 else float(temp),
                problems=int(per.size),
                min_k=int(per.min()),
                max_k=int(per.max()),
                truncated=float((part["finish_reason"] == "length").mean()),
            )
        )
    return out


def replayable_k(bank: pd.DataFrame, model: str, temperature: float) -> int:
    """The largest k every problem of the bank can replay for (model, temperature); 0 if none."""
    for c in coverage(bank):
        if c.model == model and (c.temperature is None or abs(c.temperature - temperature) < 1e-6):
            return c.min_k
    return 0


def bank_spec_texts(
    registry_ref: str, registry, k: int, temperatures: list[float], max_tokens: int | None, prompt: str | None
) -> dict[str, str]:
    """Name → YAML spec text of each strategy a bank build runs: per model greedy and a k-vote per T."""
    import json

    from cascadec.marker import format_temperature

    defaults: dict = {"seed": 0}
    if max_tokens is not None:
        defaults["max_tokens"] = max_tokens
    if prompt is not None:
        defaults["prompt"] = prompt
    head = f"version: 1\nmodels: {json.dumps(registry_ref)}\ndefaults: {json.dumps(defaults)}\n"
    out = {}
    for entry in sorted(registry.models, key=lambda e: e.cost_per_token):
        alias = entry.aliases[0] if entry.aliases else entry.id
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", alias)
        bodies = {"greedy": f"plain: {{model: {json.dumps(alias)}}}"}
        if not entry.greedy_only:
            for t in sorted(set(temperatures)):
                if t > 0:
                    bodies[f"k{k}_t{format_temperature(t)}"] = (
                        f"mv: {{model: {json.dumps(alias)}, k: {k}, temperature: {t}}}"
                    )
        for suffix, body in bodies.items():
            name = f"bank_{safe}_{suffix}"
            out[name] = head + f"name: {name}\nstrategy:\n  {body}\n"
    return out


def build_plan(out: Path, registry_ref: str, k: int, temperatures: list[float], max_tokens, prompt):
    """Compile the bank's strategy specs into one plan (the run directory keeps the plan itself)."""
    import tempfile

    from cascadec.compiler import compile_spec
    from cascadec.plan import Plan, seal
    from cascadec.registry import load_registry, named_registry

    ref = str(registry_ref)
    reg_path = named_registry(ref) if not ref.endswith((".yaml", ".yml")) else Path(ref).resolve()
    registry = load_registry(reg_path)
    models: dict = {}
    strategies = []
    with tempfile.TemporaryDirectory(prefix="cascadec-bank-") as tmp:
        for name, text in bank_spec_texts(
            str(reg_path), registry, k, temperatures, max_tokens, prompt
        ).items():
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(text, encoding="utf-8")
            plan, _ = compile_spec(path)
            models.update(plan.models)
            strategies.extend(plan.strategies)
    return seal(Plan(models=models, strategies=tuple(strategies), source=f"bank:{out}"))


def build_bank(
    *,
    registry_ref: str,
    problems: pd.DataFrame,
    out: str | Path,
    k: int,
    temperatures: list[float],
    backend,
    max_tokens: int | None = None,
    prompt: str | None = None,
    resume: bool = False,
    reporter=None,
) -> Path:
    """Run every model over ``problems`` (one mixed-strategy run) and return the bank file."""
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.runtime.session import execute, route

    out = Path(out)
    plan = build_plan(out, registry_ref, k, temperatures, max_tokens, prompt)
    keys = [s.key for s in plan.strategies]
    table = pd.concat([problems.assign(strategy=key) for key in keys], ignore_index=True)
    prepared = route(plan, table, strategy_column="strategy", source="bank problems")
    execute(
        prepared,
        backend,
        out=out,
        resume=resume,
        equivalence=Equivalence("exact"),
        reporter=reporter,
    )
    return out / BANK_FILE
