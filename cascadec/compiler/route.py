"""The ``route:`` section → a :class:`~cascadec.plan.PlanRoute`: the router is loaded (``.npz``,
no pickle), its content hash checked (against the spec's pin, when given) and carried in the
plan, and every tier gets the router head that estimates its P(right) — a tier whose model the
router does not know is an error (E404), so a router trained on another registry cannot route.

``check_route`` (a static check, for plan files too): the heads match the tiers; a condition
reading ``router_p`` without a route is warned (W400): there it is NaN and never fires (a search
space's unrouted candidates may read it: their routed twins are the ones that use it).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cascadec.compiler.context import Context, NodePath
from cascadec.compiler.draft import Draft
from cascadec.core.conditions import parse_condition
from cascadec.errors import CascadecError, Diagnostic
from cascadec.plan import PlanRoute, PlanStrategy

ROUTER_SIGNAL = "router_p"


def router_path(text: str, source: str, base: Path | None = None) -> Path:
    """A relative router path is relative to the spec's folder (``base``; else the folder of the
    spec file ``source``; else the working folder)."""
    p = Path(text).expanduser()
    if p.is_absolute():
        return p
    if base is None:
        spec = Path(source)
        base = spec.parent if source and not source.startswith("<") and spec.exists() else Path.cwd()
    return (Path(base) / p).resolve()


def compile_route(d: Draft, ctx: Context) -> tuple[Draft, list[Diagnostic]]:
    """The spec's ``route:`` as a plan route (see the module docstring)."""
    from cascadec.router.model import cached_router

    r = d.spec.strategy.route
    if r is None:
        return d, []
    where: NodePath = ("strategy", "route", "router")
    path = router_path(r.router, ctx.locator.source, ctx.base)
    try:
        router = cached_router(path, r.hash)  # a search compiles thousands of routed candidates
    except CascadecError as exc:
        return d, [ctx.locator.diag("E404", exc.message, where, fix="train one with `cascadec router train`")]
    heads, diags = [], []
    for i, t in enumerate(d.tiers):
        assert t.entry is not None
        head = router.head_for(t.entry.id, t.temperature, t.k)
        if head is None:
            diags.append(
                ctx.locator.diag(
                    "E404",
                    f"the router has no estimate for tier {i}'s model {t.entry.id!r} "
                    f"(it knows {', '.join(router.models)}): train it on a bank of this registry",
                    where,
                )
            )
        heads.append(head or "")
    if diags:
        return d, diags
    route = PlanRoute(
        router=str(path),
        hash=router.hash,
        policy=r.policy,
        tau=r.tau,
        cost_weight=r.cost_weight,
        heads=tuple(heads),
        columns=router.vectoriser.numeric,
    )
    note = f"route: {r.policy} over router {router.hash[:19]}… ({len(router.heads)} heads)"
    return replace(d, route=route, notes=(*d.notes, note)), []


def check_route(s: PlanStrategy, where: tuple[NodePath, ...], ctx: Context) -> list[Diagnostic]:
    """One head per tier; ``router_p`` only where a route says which router it reads."""
    out = []
    if s.route is not None and len(s.route.heads) != len(s.tiers):
        out.append(
            ctx.locator.diag(
                "E404",
                f"the route names {len(s.route.heads)} router heads for {len(s.tiers)} tiers",
                ("route",),
            )
        )
    if s.route is None:
        for i, t in enumerate(s.tiers):
            for name, text in (
                ("escalate_if", t.escalate_if),
                ("retry", t.retry.when if t.retry else None),
                ("explore", t.explore.when if t.explore else None),
            ):
                if text is not None and ROUTER_SIGNAL in parse_condition(text).signals():
                    out.append(
                        ctx.locator.diag(
                            "W400",
                            f"{ROUTER_SIGNAL} is NaN without a route (as every signal where it does not "
                            "apply): this part of the condition never fires",
                            (*where[i], name) if i < len(where) else (name,),
                            fix="add route: {router: ROUTER.npz, policy: none}",
                        )
                    )
                    break
    return out
