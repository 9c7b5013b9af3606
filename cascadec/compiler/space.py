"""Check a search space as a spec: the base and every candidate through the compiler.

``cascadec lint SPACE.yaml`` and ``cascadec compile --check SPACE.yaml`` read a search space
(``cascadec.spec.space``) the way ``calibrate`` and ``optimize`` will: the base spec compiles;
every condition template is filled with every grid point, parsed and type-checked; every k,
temperature, round size and adaptive-k policy is in range; and every candidate — each
combination of tier options, left-out tiers, early stopping, final answers and adaptive-k
policies — is a spec the compiler accepts (its static checks included). A finding is located
where the varying value is written (``search.tiers[i].escalate_if``, ``search.adaptive_k[j]``)
and names the first candidate it holds for and how many others.

Spaces up to ``COMPILE_EVERY_UP_TO`` candidates are compiled one by one (about 3 ms each);
larger ones are compiled on a covering set — every option of every tier, every left-out
pattern with every early-stop, final-answer and adaptive-k choice — and every other candidate
is only validated against the spec's schema. The result says which.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from cascadec.compiler.context import Context, NodePath, RegistryLike, spec_registry
from cascadec.compiler.pipeline import compile_strategy
from cascadec.errors import CascadecError, Diagnostic
from cascadec.spec.loader import SpecDocument, parse_yaml, read_spec_text, validation_diagnostics
from cascadec.spec.model import Spec
from cascadec.spec.space import (
    SearchSpace,
    SpecCandidate,
    count_candidates,
    is_space_data,
    load_space_document,
    spec_candidates,
    template_names,
    tier_options,
)

COMPILE_EVERY_UP_TO = 5000


@dataclass
class SpaceCheck:
    """What checking a space found: its size, how many candidates compiled, every finding."""

    source: str
    candidates: int | None = None  # None: the space could not be expanded (see diagnostics)
    compiled: int = 0
    every: bool = True  # every candidate compiled (else a covering set, the rest validated)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def summary(self) -> str:
        if self.candidates is None:
            return f"{self.source}: search space not expanded (errors above)"
        how = (
            "every candidate compiled"
            if self.every
            else f"{self.compiled} compiled (every option of every axis), the rest schema-checked"
        )
        state = "ok" if self.ok else f"{sum(d.is_error for d in self.diagnostics)} error(s)"
        return f"{self.source}: search space, {self.candidates} candidates, {how}: {state}"


def is_space_file(path: str | Path) -> bool:
    """Whether a YAML file is a search space (a ``search:`` key at the top); False when unreadable."""
    try:
        return is_space_data(parse_yaml(read_spec_text(path), str(path)).data)
    except Exception:  # the spec check reports what is wrong with it
        return False


class _CandidateLocator:
    """Locates a candidate's findings where its varying value is written in the space file."""

    def __init__(self, doc: SpecDocument, space: SearchSpace, cand: SpecCandidate, data: dict):
        self.doc, self.space, self.cand, self.data = doc, space, cand, data
        self.source = doc.source
        self.given = set(doc.data.get("search", {})) if isinstance(doc.data.get("search"), dict) else set()

    def map(self, path: NodePath) -> NodePath:
        head = path[:2]
        if head == ("strategy", "cascade") and len(path) >= 3 and isinstance(path[2], int):
            pos = path[2]
            if not 0 <= pos < len(self.cand.tiers):
                return path[:2]
            i = self.cand.tiers[pos]
            rest = path[3:]
            ts = self.space.tiers[i]
            if rest and rest[0] in ("k", "temperature", "escalate_if") and getattr(ts, str(rest[0])):
                return ("search", "tiers", i, rest[0])
            return ("strategy", "cascade", i, *rest)
        for name, index in (
            ("adaptive_k", self.cand.adaptive_k),
            ("early_stop", self.cand.early_stop),
            ("final_answer", self.cand.final_answer),
            ("vote", self.cand.vote),
        ):
            if head == ("strategy", name) and name in self.given:
                return (
                    ("search", name, index, *path[2:])
                    if name in ("adaptive_k", "vote")
                    else ("search", name, index)
                )
        return path

    def diag(
        self, code: str, message: str, path: NodePath = (), *, key: bool = False, fix: str | None = None
    ) -> Diagnostic:
        return self.doc.diag(code, message, self.map(path), key=key, fix=fix)

    def locate(self, path: NodePath, *, key: bool = False) -> tuple[int, int]:
        return self.doc.locate(self.map(path), key=key)

    def text_start(self, path: NodePath) -> tuple[int, int]:
        mapped = self.map(path)
        if mapped[:2] == ("search", "tiers"):  # a filled template: point at the template
            return self.doc.locate(mapped)
        return self.doc.text_start(mapped)


def _covering(cands: list[SpecCandidate]) -> set[int]:
    """Candidates that, together, hold every tier option and every structural choice."""
    seen: set[tuple] = set()
    chosen = set()
    for c in cands:
        facts = {("tier", i, ch) for i, ch in enumerate(c.choices)}
        facts.add(
            (
                "shape",
                tuple(ch is None for ch in c.choices),
                c.early_stop,
                c.final_answer,
                c.adaptive_k,
                c.vote,
            )
        )
        if not facts <= seen:
            seen |= facts
            chosen.add(c.index)
    return chosen


def _space_warnings(doc: SpecDocument, space: SearchSpace, base: dict) -> list[Diagnostic]:
    out = []
    for i, ts in enumerate(space.tiers):
        used = set(template_names(ts.escalate_if)) if ts.escalate_if else set()
        for name in ts.grid:
            if name not in used:
                out.append(
                    doc.diag(
                        "W400",
                        f"search.tiers[{i}].grid: {name!r} is not a placeholder of escalate_if; its values are never tried",
                        ("search", "tiers", i, "grid", name),
                        key=True,
                    )
                )
        if ts.escalate_if and i == len(space.tiers) - 1:
            out.append(
                doc.diag(
                    "W400",
                    f"search.tiers[{i}].escalate_if: the last tier never escalates; its condition is dropped",
                    ("search", "tiers", i, "escalate_if"),
                )
            )
    body = base.get("strategy") or {}
    given = doc.data["search"] if isinstance(doc.data.get("search"), dict) else {}
    for name in ("early_stop", "adaptive_k"):
        if name in body and name not in given:
            out.append(
                doc.diag(
                    "W400",
                    f"strategy.{name} is not kept by the candidates: the space decides it "
                    f"(search.{name}, default [null]); list it there to try it",
                    ("strategy", name),
                    key=True,
                )
            )
    return out


def check_space(path: str | Path, registry: RegistryLike = None) -> SpaceCheck:
    """Every finding for a search-space file. Never raises for bad input."""
    result = SpaceCheck(str(path))
    try:
        _check(Path(path), registry, result)
    except CascadecError as exc:
        result.candidates = None
        result.diagnostics.extend(exc.diagnostics or [Diagnostic(exc.code, exc.message, source=str(path))])
    except Exception as exc:  # a bug must not hide the other files' findings in lint
        result.candidates = None
        result.diagnostics.append(
            Diagnostic(
                "E999",
                f"internal error while checking the space: {type(exc).__name__}: {exc}",
                source=str(path),
            )
        )
    return result


def _check(path: Path, registry: RegistryLike, result: SpaceCheck) -> None:
    doc, base, space = load_space_document(path)
    base_doc = dataclasses.replace(doc, data=base)
    try:
        spec = Spec.model_validate(base)
    except ValidationError as exc:
        result.diagnostics.extend(validation_diagnostics(base_doc, exc))
        return
    reg = spec_registry(registry, spec.models, doc, path.parent)
    _, _, base_diags = compile_strategy(spec, Context(reg, base_doc), fallback_key=path.stem)
    result.diagnostics.extend(base_diags)
    result.diagnostics.extend(_space_warnings(doc, space, base))
    options = []
    for i in range(len(space.tiers)):
        try:
            options.extend(
                tier_options({"strategy": {"cascade": [base["strategy"]["cascade"][i]]}}, _one(space, i))
            )
        except CascadecError as exc:
            where = ("search", "tiers", i, "escalate_if")
            for d in exc.diagnostics or [Diagnostic(exc.code, exc.message)]:
                result.diagnostics.append(
                    doc.diag(d.code, f"search.tiers[{i}].escalate_if: {d.message}", where)
                )
            options.append([])
    if not all(options[i] for i in range(len(space.tiers))):
        return
    total = count_candidates(space, options)
    if total > space.max_candidates:
        result.diagnostics.append(
            doc.diag(
                "E200",
                f"the search space has {total} candidates, more than max_candidates {space.max_candidates}",
                ("search",),
                key=True,
            )
        )
        return
    result.candidates = total
    cands = list(spec_candidates(base, space, options))
    result.every = total <= COMPILE_EVERY_UP_TO
    to_compile = None if result.every else _covering(cands)
    seen = {(d.code, d.line, d.column, d.message) for d in result.diagnostics}
    found: dict[tuple, list] = {}
    for cand in cands:
        locator = _CandidateLocator(doc, space, cand, cand.spec)
        diags: list[Diagnostic]
        try:
            cspec = Spec.model_validate(cand.spec)
        except ValidationError as exc:
            diags = validation_diagnostics(locator, exc)  # type: ignore[arg-type]
        else:
            if to_compile is not None and cand.index not in to_compile:
                continue
            result.compiled += 1
            try:
                diags = compile_strategy(cspec, Context(reg, locator), fallback_key=path.stem)[2]
            except CascadecError as exc:
                diags = exc.diagnostics or [locator.diag(exc.code, exc.message)]
        for d in diags:
            key = (d.code, d.line, d.column, d.message)
            if key in seen:
                continue
            found.setdefault(key, [d, cand, 0])[2] += 1
    for d, cand, n in found.values():
        more = f" and {n - 1} more" if n > 1 else ""
        what = cand.describe(space, options)
        message = f"candidate-{cand.index}{more}" + (f" ({what})" if what else "") + f": {d.message}"
        result.diagnostics.append(dataclasses.replace(d, message=message))
    result.diagnostics.sort(key=lambda d: (d.line, d.column))


def _one(space: SearchSpace, i: int) -> SearchSpace:
    return space.model_copy(update={"tiers": [space.tiers[i]]})
