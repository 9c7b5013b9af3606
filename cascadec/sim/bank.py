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

from cascadec.errors import DataError, InputFileError
from cascadec.plan import Plan, seal
from cascadec.runtime.backends.replay import BANK_FILE, bank_path, read_bank
from cascadec.spec.model import SPEC_VERSION, Defaults, Spec, StrategySpec, TierSpec


def bank_file(path: str | Path) -> Path:
    """The parquet file of a bank given as a file or as a bank (run) directory."""
    p = bank_path(path)
    if not p.is_file():  # an input the user named is missing: I/O (exit 2), as a missing --data
        raise InputFileError("no such sample bank (a bank is a parquet file or a bank directory)", where=path)
    return p


def load_bank(path: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A bank as a frame in the replay schema (a run's samples.parquet is converted)."""
    if isinstance(path, pd.DataFrame):
        return read_bank(path)
    return read_bank(bank_file(path))


def covered_problems(problems: list, bank: pd.DataFrame, source: str = "the data") -> tuple[list, int]:
    """The problems the bank has samples for (in their order) and how many it lacks: a bank of
    400 GSM8K problems is simulated on those 400 when ``--data gsm8k`` names all 1,319. None
    covered is a DataError: the ids do not match (a bank of other problems, or other ids)."""
    ids = set(bank["problem_id"].astype(str))
    kept = [p for p in problems if p.id in ids]
    if not kept:
        sample = ", ".join(sorted(ids)[:3])
        raise DataError(
            f"the sample bank has no samples for any problem of {source} (its problem ids look like "
            f"{sample}; {source}'s like {', '.join(p.id for p in problems[:3])})"
        )
    return kept, len(problems) - len(kept)


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


def bank_specs(
    registry_ref: str, registry, k: int, temperatures: list[float], max_tokens: int | None, prompt: str | None
) -> dict[str, Spec]:
    """Name → spec of each strategy a bank build runs: per model greedy and a k-vote per T > 0."""
    from cascadec.marker import format_temperature

    defaults = Defaults(seed=0, max_tokens=max_tokens, prompt=prompt)
    out = {}
    for entry in sorted(registry.models, key=lambda e: e.cost_per_token):
        alias = entry.aliases[0] if entry.aliases else entry.id
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", alias)
        bodies = {"greedy": StrategySpec(plain=TierSpec(model=alias))}
        if not entry.greedy_only:
            for t in sorted(set(temperatures)):
                if t > 0:
                    vote = TierSpec(model=alias, k=k, temperature=t)
                    bodies[f"k{k}_t{format_temperature(t)}"] = StrategySpec(mv=vote)
        for suffix, body in bodies.items():
            name = f"bank_{safe}_{suffix}"
            out[name] = Spec(
                version=SPEC_VERSION, name=name, models=registry_ref, defaults=defaults, strategy=body
            )
    return out


def bank_plan(
    registry_ref: str | Path,
    k: int,
    temperatures: list[float],
    max_tokens: int | None = None,
    prompt: str | None = None,
    source: str = "bank",
) -> Plan:
    """The bank's strategies (:func:`bank_specs`) compiled through the compiler's front door into
    one plan, in cost order (the run directory keeps the plan itself)."""
    from cascadec.compiler import compile_spec_data
    from cascadec.registry import resolve_registry

    registry = resolve_registry(str(registry_ref))
    models: dict = {}
    strategies = []
    for name, spec in bank_specs(str(registry_ref), registry, k, temperatures, max_tokens, prompt).items():
        plan, _ = compile_spec_data(spec, registry, source=name)
        models.update(plan.models)
        strategies.extend(plan.strategies)
    return seal(Plan(models=models, strategies=tuple(strategies), source=source))


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
    plan = bank_plan(registry_ref, k, temperatures, max_tokens, prompt, source=f"bank:{out}")
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
