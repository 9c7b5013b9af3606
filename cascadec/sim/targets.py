"""Calibration targets: what ``cascadec calibrate`` certifies, and the ``--target`` phrases that say it.

Two kinds, certifiable together with one confidence level:

- ``accuracy >= largest - 0.5 pt with 95% confidence`` — the paired loss rate (reference right,
  candidate wrong) is at most ε; ``largest`` is the registry's largest model, greedy; any other
  name is a spec or marker to match (as ``--reference``).
- ``cost <= 0.4x`` (``0.4x largest``, ``0.4× largest``) — the mean cost per problem is at most
  r times the reference's (an empirical-Bernstein bound on the bounded per-problem cost).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cascadec.errors import CascadecError

LARGEST = "largest"
_NUM = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"  # ASCII digits only
_CONF = rf"(?:\s*,?\s*with\s+(?P<conf>{_NUM})\s*%\s*confidence)?\s*$"
_ACCURACY = re.compile(
    rf"^\s*acc(?:uracy)?\s*(?:>=|≥)\s*(?P<ref>[^\s]+?)\s*(?:-\s*(?P<pt>{_NUM})\s*(?:pts?|points?|%)?)?{_CONF}",
    re.IGNORECASE,
)
_COST = re.compile(rf"^\s*cost\s*(?:<=|≤)\s*(?P<r>{_NUM})\s*[x×]\s*(?P<ref>[^\s,]+)?{_CONF}", re.IGNORECASE)
FORMS = '"accuracy >= largest - 0.5 pt with 95% confidence", "cost <= 0.4x"'


@dataclass(frozen=True)
class Target:
    max_loss: float | None = 0.01  # ε (a fraction); None: no accuracy target (most accurate within cost)
    delta: float = 0.05  # 1 − confidence, shared by every part of the target
    max_cost_ratio: float | None = None  # r: certified mean cost ≤ r × the reference's

    def describe(self, reference: str) -> str:
        parts = []
        if self.max_loss is not None:
            parts.append(f"accuracy >= {reference} - {100 * self.max_loss:g} pt")
        if self.max_cost_ratio is not None:
            parts.append(f"cost <= {self.max_cost_ratio:g}x {reference}")
        return " and ".join(parts) + f" with {100 * (1 - self.delta):g}% confidence"


def _bad(text: str, why: str) -> CascadecError:
    return CascadecError(f"--target {text!r}: {why}; forms: {FORMS}", code="E701")


def parse_targets(
    texts: list[str],
    *,
    max_loss: float | None = None,
    max_cost_ratio: float | None = None,
    confidence: float | None = None,
) -> tuple[Target, str | None]:
    """(Target, reference name or None for the largest model) from ``--target`` phrases and the
    plain options (``max_loss`` a fraction). With neither an accuracy phrase nor ``max_loss``,
    the accuracy target is 1 point unless a cost target was given (then: most accurate within it)."""
    loss, ratio, conf, ref = max_loss, max_cost_ratio, None, None
    for text in texts:
        m = _ACCURACY.match(text) or _COST.match(text)
        if m is None:
            raise _bad(text, "not a target")
        name = m.group("ref")
        if name and name.lower() != LARGEST:
            if ref is not None and ref != name:
                raise _bad(text, f"a second reference ({ref!r} already)")
            ref = name
        if m.group("conf"):
            c = float(m.group("conf")) / 100
            if (conf is not None and c != conf) or (confidence is not None and c != confidence):
                raise _bad(text, "every part of a target has one confidence")
            conf = c
        if m.re is _ACCURACY:
            if loss is not None:
                raise _bad(text, "a second accuracy target (--max-loss or another phrase)")
            loss = float(m.group("pt") or 0) / 100
        else:
            if ratio is not None:
                raise _bad(text, "a second cost target (--max-cost-ratio or another phrase)")
            ratio = float(m.group("r"))
            if ratio <= 0:
                raise _bad(text, "the cost ratio must be positive")
    if loss is None and ratio is None:
        loss = 0.01
    conf = conf if conf is not None else (confidence if confidence is not None else 0.95)
    if not 0.5 <= conf < 1:
        raise CascadecError(f"confidence must be in [50%, 100%), got {100 * conf:g}%", code="E701")
    if loss is not None and not 0 <= loss <= 1:
        raise CascadecError(f"an accuracy loss must be in [0, 100] points, got {100 * loss:g}", code="E701")
    return Target(max_loss=loss, delta=round(1 - conf, 10), max_cost_ratio=ratio), ref
