"""Learned routing (issue 25): features, the artifact, the spec's route:, everywhere a plan runs,
and calibration that never lets the held-out split reach training or choosing."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.compiler import compile_spec
from cascadec.errors import CascadecError, CompileError, SpecError
from cascadec.plan import PlanRoute, load_plan, plan_to_json, resolve_problems, route_key
from cascadec.router.features import Vectoriser
from cascadec.router.model import RouterError, load_router, save_router
from cascadec.router.train import auroc, fold_of, reliability
from cascadec.sim.synthetic import synthetic_bank, synthetic_problems, synthetic_registry_yaml
from tests.property.routers import synthetic_router

runner = CliRunner()


# --- features -------------------------------------------------------------------------------
def test_hashing_is_stable_and_position_free():
    v = Vectoriser(bits=12)
    a = v.transform(["485+37+96="])
    b = v.transform(["485+37+96="])
    assert a.cols.tolist() == b.cols.tolist()  # deterministic, no hash() randomisation
    assert a.cols.max() < 4096
    # the same n-grams in another text, at another position, land in the same columns
    c = v.transform(["xx", "so 485+37+96= again"])
    assert set(a.cols.tolist()) - {int(x) for x in a.cols[-1:]} <= set(c.cols.tolist()) | set(a.cols.tolist())
    shared = set(v.transform(["485"]).cols.tolist()) & set(v.transform(["a 485"]).cols.tolist())
    assert len(shared) >= 6  # char 1-4 grams, shape grams, the word, its length


def test_rows_are_independent_of_the_batch():
    v = Vectoriser()
    texts = ["2043+808=", "49+36=", "Natalia sold clips to 48 of her friends in April."]
    together = v.transform(texts)
    for i, t in enumerate(texts):
        alone = v.transform([t])
        mine = together.rows == i
        assert sorted(together.cols[mine].tolist()) == sorted(alone.cols.tolist())
        assert np.allclose(sorted(together.vals[mine]), sorted(alone.vals))


def test_folds_depend_on_the_id_only():
    ids = [f"p{i}" for i in range(50)]
    f = fold_of(ids, 5, 0)
    assert set(f.tolist()) <= set(range(5))
    assert fold_of(ids[::-1], 5, 0).tolist() == f[::-1].tolist()


def test_auroc_and_reliability():
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert auroc(np.array([0.5, 0.5]), np.array([1, 1])) is None
    r = reliability(np.array([0.1, 0.9, 0.9, 0.1]), np.array([0, 1, 1, 0]))
    assert r["auroc"] == 1.0 and r["ece"] == pytest.approx(0.1)
    assert sum(b["n"] for b in r["bins"]) == 4


# --- the artifact -----------------------------------------------------------------------------
def test_artifact_round_trip_predicts_the_same(tmp_path):
    router, path = synthetic_router()
    copy = save_router(router, tmp_path / "r.npz")
    loaded = load_router(tmp_path / "r.npz", router.hash)
    assert loaded.hash == copy.hash == router.hash
    texts = ["problem 1 level c", "problem 2 level h"]
    num = {"difficulty": [0.25, 0.75]}
    assert np.array_equal(loaded.predict(texts, num), router.predict(texts, num))
    p = loaded.predict(texts, num)
    assert p.shape == (2, len(router.heads)) and ((0 < p) & (p < 1)).all()
    assert loaded.predict(texts, {})[0].shape == (len(router.heads),)  # a missing column: its mean


def test_damaged_edited_or_pickled_routers_are_refused(tmp_path):
    router, path = synthetic_router()
    data = Path(path).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    # edit one coefficient: the content no longer matches the stored hash
    coef = np.load(io.BytesIO(members["coef.npy"]), allow_pickle=False).copy()
    coef.flat[0] += 1.0
    buf = io.BytesIO()
    np.save(buf, coef)
    edited = tmp_path / "edited.npz"
    with zipfile.ZipFile(edited, "w") as z:
        for n, b in members.items():
            z.writestr(n, buf.getvalue() if n == "coef.npy" else b)
    with pytest.raises(RouterError, match="does not match its hash"):
        load_router(edited)
    # an object array needs pickle: never loaded
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"format": "cascadec-router"}], dtype=object))
    with pytest.raises(RouterError, match="not a cascadec router"):
        load_router(pickled)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(RouterError):
        load_router(junk)
    with pytest.raises(RouterError, match="plan expects"):
        load_router(path, "sha256:" + "0" * 64)
    with pytest.raises(CascadecError) as exc:
        load_router(tmp_path / "missing.npz")
    assert exc.value.code == "E901"


# --- specs and plans --------------------------------------------------------------------------
def _spec(tmp_path: Path, route: str, escalate: str = "agreement < 1.0", models: str = "reg.yaml") -> Path:
    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml())
    spec = tmp_path / "routed.yaml"
    spec.write_text(
        f"""version: 1
name: routed
models: {models}
defaults: {{max_tokens: 64, prompt: raw}}
strategy:
  cascade:
    - {{model: 0.1M, k: 2, temperature: 0.7, escalate_if: "{escalate}"}}
    - {{model: 0.4M, k: 2, temperature: 0.7, escalate_if: "agreement < 1.0"}}
    - {{model: 3M}}
  route: {route}
"""
    )
    return spec


def _router_here(tmp_path: Path) -> Path:
    router, _ = synthetic_router()
    save_router(router, tmp_path / "router.npz")
    return tmp_path / "router.npz"


def test_a_routed_spec_compiles_to_a_plan_carrying_the_hash(tmp_path):
    _router_here(tmp_path)
    router, _ = synthetic_router()
    spec = _spec(tmp_path, "{router: router.npz, policy: threshold, tau: 0.8}", "router_p < 0.5")
    plan, _ = compile_spec(spec)
    route = plan.strategies[0].route
    assert route.hash == router.hash and route.policy == "threshold" and route.tau == 0.8
    assert route.heads == ("S@T0.7/k2", "M@T0.7/k2", "L@T0/k1")
    assert route.columns == ("difficulty",)
    assert Path(route.router) == (tmp_path / "router.npz").resolve()
    # the plan file round-trips (hash and all), and a plan without a route keeps its old bytes
    (tmp_path / "plan.json").write_text(plan_to_json(plan))
    assert load_plan(tmp_path / "plan.json") == plan
    assert '"route"' not in plan_to_json(compile_spec(_spec(tmp_path, "null"))[0])


@pytest.mark.parametrize(
    ("route", "code", "match"),
    [
        ("{router: missing.npz, policy: threshold, tau: 0.8}", "E404", "cannot read router"),
        (
            "{router: router.npz, hash: 'sha256:" + "1" * 64 + "', policy: threshold, tau: 0.8}",
            "E404",
            "expects",
        ),
        ("{router: router.npz, policy: threshold}", "E200", "needs tau"),
        ("{router: router.npz, policy: expected_cost, tau: 0.5}", "E200", "cost_weight"),
        ("{router: router.npz, policy: threshold, tau: 1.5}", "E200", ""),
        ("{router: router.npz, policy: threshold, tau: 0.5, code: 'os.system()'}", "E201", ""),
        ("{router: !!python/object/apply:os.system ['true'], policy: none}", "E204", ""),
    ],
)
def test_bad_routes_are_located_errors(tmp_path, route, code, match):
    _router_here(tmp_path)
    with pytest.raises((SpecError, CompileError)) as exc:
        compile_spec(_spec(tmp_path, route))
    assert exc.value.code == code, exc.value
    assert match in str(exc.value)


def test_router_p_without_a_route_never_fires_and_the_router_must_know_the_models(tmp_path):
    _router_here(tmp_path)
    _, warnings = compile_spec(_spec(tmp_path, "null", "router_p < 0.5"))  # NaN: never fires
    assert [w.code for w in warnings] == ["W400"] and "router_p is NaN without a route" in warnings[0].message
    other = tmp_path / "other.yaml"
    other.write_text(
        "version: 1\nprompt: raw\nmodels:\n  - {id: X, aliases: [0.1M], params: 1}\n"
        "  - {id: M, aliases: [0.4M], params: 4}\n  - {id: L, aliases: [3M], params: 30}\n"
    )
    with pytest.raises(CompileError, match="no estimate for tier 0's model 'X'") as exc:
        compile_spec(_spec(tmp_path, "{router: router.npz, policy: none}", models="other.yaml"))
    assert exc.value.code == "E404"


def test_lint_knows_the_route_syntax(tmp_path):
    _router_here(tmp_path)
    good = _spec(tmp_path, "{router: router.npz, policy: expected_cost, cost_weight: 0.3}")
    assert runner.invoke(app, ["lint", str(good)]).exit_code == 0
    bad = _spec(tmp_path, "{router: router.npz, policy: threshold, tua: 0.3}")
    result = runner.invoke(app, ["lint", str(bad)])
    assert result.exit_code == 1 and "E201" in result.output and "tau" in result.output


def test_start_tiers_follow_the_route():
    router, path = synthetic_router()
    from cascadec.runtime.testing import make_plan, strategy, tier

    tiers = [tier("S", 2, cost=1.0), tier("M", 2, cost=4.0), tier("L", 1, 0.0, cost=30.0)]
    heads = tuple(router.head_for(t.model, t.temperature, t.k) for t in tiers)
    route = PlanRoute(router=str(path), hash=router.hash, policy="threshold", tau=0.9, heads=heads)
    s = make_plan([strategy("r", tiers, route=route)], {"S": 1, "M": 4, "L": 30}).strategies[0]

    def features(ps):
        return {route_key(route, h): p for h, p in zip(heads, ps, strict=True)}

    starts = [
        len(s.tiers) - len(t)
        for t in resolve_problems(s, [features(ps) for ps in ((0.95, 1, 1), (0.5, 0.92, 1), (0.1, 0.2, 0.3))])
    ]
    assert starts == [0, 1, 2]  # the cheapest tier reaching tau, else the last
    with pytest.raises(CascadecError, match="no prediction"):
        resolve_problems(s, [{}])


# --- everywhere a plan runs --------------------------------------------------------------------
@pytest.fixture(scope="module")
def routed_setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("routed")
    _router_here(tmp)
    spec = _spec(
        tmp, "{router: router.npz, policy: threshold, tau: 0.85}", "agreement < 1.0 or router_p < 0.6"
    )
    frame = synthetic_problems(40, seed=9)
    frame["problem"] = [
        f"problem {i} level {'abcdefghij'[int(d * 10) % 10]}" for i, d in enumerate(frame["difficulty"])
    ]
    bank = synthetic_bank(frame, k=4, seed=9)
    frame.to_json(tmp / "p.jsonl", orient="records", lines=True)
    bank.to_parquet(tmp / "bank.parquet")
    return tmp, spec, frame, bank


def test_run_simulate_and_api_route_alike(routed_setup):
    import cascadec
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.sim.simulate import problems_for, simulate

    tmp, spec, frame, bank = routed_setup
    plan, _ = compile_spec(spec)
    out = cascadec.run(str(spec), frame, backend="replay", bank=bank, equivalence="exact")
    first_tiers = [int(p[0]["tier"]) for p in out["cascade_path"]] if "cascade_path" in out else None
    sim = simulate(plan, bank, problems_for(plan, frame), equivalence=Equivalence("exact"))
    o = sim.outcome
    assert len(set(o.reached[0].argmax(axis=1).tolist())) > 1  # problems start at different tiers
    result = runner.invoke(
        app,
        [
            "run",
            str(spec),
            "--data",
            str(tmp / "p.jsonl"),
            "--backend",
            "replay",
            "--bank",
            str(tmp / "bank.parquet"),
            "--out",
            str(tmp / "run"),
            "--equivalence",
            "exact",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(tmp / "run" / "problems.parquet").set_index("id")
    for j, pid in enumerate(frame["id"]):
        r = rows.loc[pid]
        assert r["cost"] == round(float(o.cost[0, j]), 6)
        assert int(r["path"][0]["tier"]) == int(o.reached[0, j].argmax())
        router_p = [t["signals"]["router_p"] for t in r["tiers"]]
        assert all(0 < x < 1 for x in router_p)
    if first_tiers is not None:
        assert first_tiers == [int(rows.loc[p]["path"][0]["tier"]) for p in frame["id"]]


def test_serve_routes_each_request_as_run_does(routed_setup):
    pytest.importorskip("fastapi")  # the serve extra (a light install has none of it)
    pytest.importorskip("prometheus_client")
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.runtime.session import route
    from cascadec.serve.cascade import CascadeRunner
    from cascadec.serve.catalog import Served

    tmp, spec, frame, bank = routed_setup
    plan, _ = compile_spec(spec)
    prepared = route(plan, frame)
    runner_ = CascadeRunner(engines=None, equivalence=Equivalence("exact"))  # start() asks no engine
    served = Served(name="routed", plan=plan, strategy=plan.strategies[0])
    for problem, _, tiers in prepared.assignments:
        outcome = runner_.start(
            served, problem.problem, pid=problem.id, data={"difficulty": problem.features["difficulty"]}
        )
        assert outcome.job.tiers == tiers
        assert outcome.job.router_p == pytest.approx(
            tuple(
                problem.features[route_key(plan.strategies[0].route, h)]
                for h in plan.strategies[0].route.heads
            )
        )


def test_cli_router_train_and_info(tmp_path):
    frame = synthetic_problems(60, seed=4)
    bank = synthetic_bank(frame, k=2, seed=4)
    frame.to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    bank.to_parquet(tmp_path / "bank.parquet")
    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml())
    args = [
        "router",
        "train",
        "--bank",
        str(tmp_path / "bank.parquet"),
        "--data",
        str(tmp_path / "p.jsonl"),
        "--models",
        str(tmp_path / "reg.yaml"),
        "--out",
        str(tmp_path / "r.npz"),
        "--equivalence",
        "exact",
        "--column",
        "difficulty",
        "--folds",
        "3",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "auroc" in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output  # never replaced by default
    (tmp_path / "notes.txt").write_text("mine")
    other = runner.invoke(
        app, [*args[:-7], "--out", str(tmp_path / "notes.txt"), "--overwrite", "--equivalence", "exact"]
    )
    assert other.exit_code == 2 and (tmp_path / "notes.txt").read_text() == "mine"
    info = runner.invoke(app, ["router", "info", str(tmp_path / "r.npz")])
    assert info.exit_code == 0 and "S@T0/k1" in info.output and "60 problems" in info.output
    assert runner.invoke(app, ["router", "info", str(tmp_path / "p.jsonl")]).exit_code == 1


# --- calibration: the held-out split never reaches training or choosing -------------------------
SPACE = """version: 1
name: syn_search
models: reg.yaml
defaults: {max_tokens: 64, prompt: raw}
strategy:
  cascade:
    - {model: 0.1M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 0.4M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 3M}
search:
  tiers:
    - {escalate_if: "agreement < {a}", grid: {a: [0.75, 1.0]}, optional: true}
    - {escalate_if: "agreement < {a}", grid: {a: [0.75, 1.0]}}
    - {}
  route: [null, {policy: threshold, tau: [0.6, 0.9]}, {policy: expected_cost, cost_weight: [0.5]}]
"""


def _calibrate(tmp: Path, frame: pd.DataFrame, bank: pd.DataFrame, name: str):
    from cascadec.sim.calibrate import calibrate
    from cascadec.sim.routed import route_search, with_search
    from cascadec.sim.search import load_search
    from cascadec.sim.targets import Target

    frame.to_json(tmp / f"{name}.jsonl", orient="records", lines=True)
    bank.to_parquet(tmp / f"{name}.parquet")
    search = load_search(tmp / "space.yaml", tmp / f"{name}.parquet", tmp / f"{name}.jsonl", "exact")
    routed = route_search(search, fraction=0.5, seed=0, router_out=tmp / f"{name}.npz")
    search = with_search(search, routed)
    result = calibrate(
        search.strategies,
        search.reference,
        search.plan,
        search.bank,
        search.problems,
        Target(max_loss=0.05, delta=0.05),
        fraction=0.5,
        seed=0,
        equivalence=search.equivalence,
    )
    return routed, result, search


def test_scrambled_held_out_labels_change_neither_the_router_nor_the_choice(tmp_path):
    from cascadec.sim.calibrate import split

    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml())
    (tmp_path / "space.yaml").write_text(SPACE)
    frame = synthetic_problems(300, seed=12)
    frame["problem"] = [
        f"problem {i} level {'abcdefghij'[int(d * 10) % 10]}" for i, d in enumerate(frame["difficulty"])
    ]
    bank = synthetic_bank(frame, k=4, seed=12)
    routed, result, search = _calibrate(tmp_path, frame, bank, "orig")
    assert len(search.candidates) == 6 * 4  # 6 base candidates × (no route + 3 routes)
    # scramble every held-out problem's gold answer and its bank rows' answers
    _, hold = split(search.problems, 0.5, 0)
    held_ids = {search.problems[i].id for i in hold}
    scrambled = frame.copy()
    scrambled.loc[scrambled["id"].isin(held_ids), "answer"] = "999"
    sbank = bank.copy()
    rows = sbank["problem_id"].isin(held_ids)
    sbank.loc[rows, "text"] = sbank.loc[rows, "text"].sample(frac=1.0, random_state=0).to_numpy()
    routed2, result2, _ = _calibrate(tmp_path, scrambled, sbank, "scrambled")
    assert routed2.router.hash == routed.router.hash  # trained on the calibration split alone
    assert result2.sequence == result.sequence  # chosen on it alone (certifying then reads the held-out)
    assert any(search.strategies[i].route is not None for i in result.sequence)  # routes compete
    # held-out predictions come from the calibration-split router, never the cross-fitted folds
    key = route_key(search.strategies[-1].route, routed.router.names[0])
    p = search.problems[hold[0]]
    assert p.features[key] == pytest.approx(
        float(routed.router.predict([p.problem], {}, [routed.router.names[0]])[0, 0])
    )
