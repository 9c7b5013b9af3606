"""The vectorised simulator's general path: the runtime's job state machine over arrays.

Every (configuration, problem) pair is an element, and each step serves every element's
pending ask from the bank, votes, measures the signals and decides — stop, early stop, retry,
explore, skip to the top, escalate, out of budget — with the same rules, the same tie-breaks
and the same floating-point order of operations as :mod:`cascadec.runtime.jobs`, so its
decisions are the runtime's decisions. Configurations whose tiers decide on their own samples
only take the faster :mod:`.sweep` instead (see :func:`.vector.simulate_vector`).
"""

from __future__ import annotations

import numpy as np

from cascadec.errors import DataError
from cascadec.plan import PlanStrategy, resolve_problems, route_key
from cascadec.sim.arrays import BIG, BankArrays, log_terms
from cascadec.sim.tables import POLICIES, Outcome, Tables, veval
from cascadec.sim.tally import at_winner, signals, vote


def route_matrix(strategy: PlanStrategy, problems, cache: dict | None = None) -> np.ndarray:
    """[problems × tiers] the router's P(right) of each tier (the features the runtime reads);
    ``cache``: matrices already read, by (router hash, heads) — candidates share routers."""
    route = strategy.route
    assert route is not None
    if cache is not None:
        key = (route.hash, route.heads)
        if key not in cache:
            cache[key] = route_matrix(strategy, problems)
        return cache[key]
    keys = [route_key(route, h) for h in route.heads]
    return np.array([[p.features[k] for k in keys] for p in problems], dtype=np.float64).reshape(
        -1, len(keys)
    )


def route_starts(strategy: PlanStrategy, problems, cache: dict | None = None) -> np.ndarray:
    """Each problem's start tier under the strategy's route: :func:`cascadec.plan.route_start` over
    arrays (the same comparisons and the same floating-point operations, ties to the cheaper tier)."""
    route = strategy.route
    assert route is not None
    n, last = len(problems), len(strategy.tiers) - 1
    if route.policy == "none" or not n:
        return np.zeros(n, dtype=np.int64)
    probs = route_matrix(strategy, problems, cache)
    if route.policy == "threshold":
        ok = probs >= (0.5 if route.tau is None else route.tau)
        return np.where(ok.any(axis=1), ok.argmax(axis=1), last).astype(np.int64)
    costs = np.array([t.k * t.cost_per_token for t in strategy.tiers], dtype=np.float64)
    weight = 0.0 if route.cost_weight is None else route.cost_weight
    utility = probs - weight * costs / costs[-1]
    return utility.argmax(axis=1).astype(np.int64)


class Machine:
    """The job state machine over (configuration, problem) elements, one step for all at once."""

    def __init__(self, tables: Tables, A: BankArrays, strategies: list[PlanStrategy]):
        self.tb, self.A = tables, A
        C, P, T = tables.C, len(A.problems), tables.T
        M = C * P
        self.C, self.P, self.M = C, P, M
        self.cfg = np.repeat(np.arange(C), P)
        self.prob = np.tile(np.arange(P), C)
        k0 = np.empty(M, dtype=np.int64)
        start = np.empty(M, dtype=np.int64)
        self._routes: dict = {}  # router predictions per (hash, heads), read once per machine
        for c, s in enumerate(strategies):
            if s.adaptive_k is None and s.route is None:  # every problem runs the tiers as written
                start[c * P : (c + 1) * P] = 0
                k0[c * P : (c + 1) * P] = s.tiers[0].k
                continue
            if s.adaptive_k is None:  # routed only: the start tiers over arrays, as plan.route_start
                start[c * P : (c + 1) * P] = route_starts(s, A.problems, self._routes)
                k0[c * P : (c + 1) * P] = s.tiers[0].k
                continue
            resolved = resolve_problems(s, [p.features for p in A.problems])
            for p, tiers in enumerate(resolved):
                start[c * P + p] = len(s.tiers) - len(tiers)
                k0[c * P + p] = tiers[0].k if len(tiers) == len(s.tiers) else s.tiers[0].k
        self.k0, self.start = k0, start
        K = A.n_classes
        self.t = start.copy()
        self.done = np.zeros(M, bool)
        i64 = lambda: np.zeros(M, dtype=np.int64)  # noqa: E731
        f64 = lambda: np.zeros(M)  # noqa: E731
        self.target, self.drawn, self.retries, self.total, self.ppos = i64(), i64(), i64(), i64(), i64()
        self.explored = np.zeros(M, bool)
        self.ask_n, self.ask_s = i64(), i64()
        self.counts = np.zeros((M, K), dtype=np.int64)
        self.clsum = np.zeros((M, K))
        self.first = np.full((M, K), BIG, dtype=np.int64)
        self.nolp, self.tok_tier, self.lpn, self.entn = i64(), i64(), i64(), i64()
        self.lpsum, self.entsum = f64(), f64()
        self.pcounts = np.zeros((M, K), dtype=np.int64)
        self.pclsum = np.zeros((M, K))
        self.pfirst = np.full((M, K), BIG, dtype=np.int64)
        self.pnolp, self.tokens = i64(), i64()
        self.priced_tier, self.recorded_tier = i64(), f64()  # cost: tokens x cost per token + recorded
        self.scored = A.score is not None
        self.score_sum, self.score_n, self.score_max = f64(), i64(), np.full(M, np.nan)
        self.class_score = np.zeros((M, K) if self.scored else (0, 0))
        self.class_score_n = np.zeros((M, K) if self.scored else (0, 0), dtype=np.int64)
        self.cost_prev = f64()
        self.cur_win, self.last_win, self.best_win = i64() - 1, i64() - 1, i64() - 1
        self.cur_agree = f64()
        self.best_has, self.best_agree = i64() - 1, np.full(M, -np.inf)
        self.runs, self.reason = i64(), i64()
        self.reached = np.zeros((M, T), bool)
        self.logt = log_terms(int(A.n * 4 + 64))
        self.mixed = np.zeros(M, bool)  # the tier drew from more than one stream (retry/explore temperature)
        self.pooled = tables.policy[self.cfg] == POLICIES.index("pooled")
        self.pre = A.prefix
        # learned routing: the router's P(right) per (element, tier), known before any sample
        self.router_p = np.full((M, T), np.nan)
        for c, s in enumerate(strategies):
            if s.route is not None and P:
                self.router_p[c * P : (c + 1) * P, : len(s.tiers)] = route_matrix(s, A.problems, self._routes)

    # --- per-element tier parameters --------------------------------------------------------
    def _k(self, rows, t):
        return np.where(t == 0, self.k0[rows], self.tb.k[self.cfg[rows], t])

    def _round_n(self, rows):
        remaining = self.target[rows] - self.drawn[rows]
        rs = self.tb.round[self.cfg[rows]]
        return np.where(rs > 0, np.minimum(rs, remaining), remaining)

    def _cost(self, rows):
        cpt = self.tb.cpt[self.cfg[rows], self.t[rows]]
        return self.cost_prev[rows] + (self.priced_tier[rows] * cpt + self.recorded_tier[rows])

    def _over(self, rows, n):
        c = self.cfg[rows]
        return (self.total[rows] + n > self.tb.max_s[c]) | (self._cost(rows) >= self.tb.max_c[c])

    def _holds(self, rows, ids, sig):
        out = np.zeros(rows.size, bool)
        for u in np.unique(ids):
            if u < 0:
                continue
            sel = ids == u
            sub = {name: v[sel] for name, v in sig.items()}
            out[sel] = np.asarray(veval(self.tb.asts[u], sub, int(sel.sum())), dtype=bool)
        return out

    # --- transitions ----------------------------------------------------------------------
    def _ask(self, rows, n, stream):
        self.ask_n[rows] = n
        self.ask_s[rows] = stream

    def _enter(self, rows, pos, first=False):
        if not first and rows.size:
            over = self._over(rows, self._k(rows, pos))
            self._finish(rows[over], 2, commit=False)
            rows, pos = rows[~over], pos[~over]
        if not rows.size:
            return
        self.t[rows] = pos
        self.target[rows] = self._k(rows, pos)
        self.drawn[rows] = 0
        self.retries[rows] = 0
        self.explored[rows] = False
        self.counts[rows] = 0
        self.clsum[rows] = 0.0
        self.first[rows] = BIG
        for a in (self.nolp, self.tok_tier, self.lpn, self.entn, self.lpsum, self.entsum):
            a[rows] = 0
        for a in (self.priced_tier, self.recorded_tier, self.score_sum, self.score_n):
            a[rows] = 0
        self.score_max[rows] = np.nan
        if self.scored:
            self.class_score[rows] = 0.0
            self.class_score_n[rows] = 0
        self.reached[rows, pos] = True
        self.mixed[rows] = False
        self.runs[rows] += 1
        self._ask(rows, self._round_n(rows), self.tb.stream[self.cfg[rows], pos])

    def _commit(self, rows):
        """The tier is over: its vote is the one the final-answer policies see."""
        self.cost_prev[rows] = self._cost(rows)
        self.tok_tier[rows] = 0
        self.priced_tier[rows] = 0
        self.recorded_tier[rows] = 0.0
        win = self.cur_win[rows]
        self.last_win[rows] = win
        has = (win >= 0).astype(np.int64)
        agree = self.cur_agree[rows]
        better = (has > self.best_has[rows]) | (
            (has == self.best_has[rows]) & (agree >= self.best_agree[rows])
        )
        r = rows[better]
        self.best_has[r], self.best_agree[r], self.best_win[r] = has[better], agree[better], win[better]

    def _finish(self, rows, reason, commit=True):
        if not rows.size:
            return
        if commit:
            self._commit(rows)
        self.done[rows] = True
        self.ask_n[rows] = 0
        self.reason[rows] = reason

    # --- one step ---------------------------------------------------------------------------
    def _receive(self, rows):
        """Serve every pending ask. A tier whose samples all come from one stream reads prefix
        sums (sequential sums, so bit-identical to the runtime's); the rest go sample by sample."""
        n = self.ask_n[rows]
        stream = self.tb.stream[self.cfg[rows], self.t[rows]]
        self.mixed[rows] |= self.ask_s[rows] != stream
        fast = ~self.mixed[rows] & ~self.pooled[rows]
        if fast.any():
            self._receive_prefix(rows[fast], n[fast])
        slow = ~fast
        if slow.any():
            self._receive_each(rows[slow], n[slow])
        self.drawn[rows] += n
        self.total[rows] += n
        self.ppos[rows] += n

    def _receive_prefix(self, r, n):
        A, pre = self.A, self.pre
        s, p = self.ask_s[r], self.prob[r]
        a, b = self.drawn[r], self.drawn[r] + n
        if (b > A.avail[s, p]).any():
            self._missing(r, b - 1, s, p)
        self.counts[r] = pre.cc[s, p, b]
        self.clsum[r] = pre.cl[s, p, b]
        fp = pre.first[s, p]
        self.first[r] = np.where(fp < b[:, None], fp, BIG)
        self.nolp[r] = pre.nolp[s, p, b]
        self.lpsum[r], self.lpn[r] = pre.lps[s, p, b], pre.lpn[s, p, b]
        self.entsum[r], self.entn[r] = pre.ents[s, p, b], pre.entn[s, p, b]
        self.tok_tier[r] = pre.tok[s, p, b]
        self.tokens[r] += pre.tok[s, p, b] - pre.tok[s, p, a]
        self.priced_tier[r], self.recorded_tier[r] = pre.tokc[s, p, b], pre.cost[s, p, b]
        sc = pre.scores
        if sc is not None:
            self.score_sum[r], self.score_n[r], self.score_max[r] = (
                sc.sum[s, p, b],
                sc.n[s, p, b],
                sc.max[s, p, b],
            )
            self.class_score[r], self.class_score_n[r] = sc.cls[s, p, b], sc.clsn[s, p, b]

    def _missing(self, r, idx, s, p):
        A = self.A
        bad = int(np.flatnonzero(idx >= A.avail[s, p])[0])
        model, temp, _ = next(k for k, v in A.streams.items() if v == s[bad])
        raise DataError(
            f"the sample bank lacks samples for model {model!r}, problem "
            f"{A.problems[p[bad]].id!r}, temperature {temp:g}: index {idx[bad]} asked, "
            f"{A.avail[s[bad], p[bad]]} recorded; record a larger bank or lower k"
        )

    def _receive_each(self, rows, n):
        A = self.A
        for i in range(int(n.max())):
            r = rows[n > i]
            idx = self.drawn[r] + i
            s, p = self.ask_s[r], self.prob[r]
            if (idx >= A.avail[s, p]).any():
                self._missing(r, idx, s, p)
            c, lp, ent, tk = A.cls[s, p, idx], A.lp[s, p, idx], A.ent[s, p, idx], A.tok[s, p, idx]
            has_lp, has_ent = ~np.isnan(lp), ~np.isnan(ent)
            self.lpsum[r] += np.where(has_lp, lp, 0.0)
            self.lpn[r] += has_lp
            self.entsum[r] += np.where(has_ent, ent, 0.0)
            self.entn[r] += has_ent
            self.tok_tier[r] += tk
            self.tokens[r] += tk
            cost = A.cost[s, p, idx]
            priced = np.isnan(cost)
            self.priced_tier[r] += np.where(priced, tk, 0)
            self.recorded_tier[r] += np.where(priced, 0.0, cost)
            if self.scored:
                sc = A.score[s, p, idx]
                known = ~np.isnan(sc)
                self.score_sum[r] += np.where(known, sc, 0.0)
                self.score_n[r] += known
                self.score_max[r] = np.fmax(self.score_max[r], sc)
            v = c >= 0
            rv, cv, lv = r[v], c[v], lp[v]
            self.counts[rv, cv] += 1
            self.clsum[rv, cv] += lv
            if self.scored:
                sv = A.score[s, p, idx][v]
                self.class_score[rv, cv] += np.where(np.isnan(sv), 0.0, sv)
                self.class_score_n[rv, cv] += ~np.isnan(sv)
            self.first[rv, cv] = np.minimum(self.first[rv, cv], self.drawn[rv] + i)
            self.nolp[rv] += np.isnan(lv)
            self.pcounts[rv, cv] += 1
            self.pclsum[rv, cv] += lv
            self.pfirst[rv, cv] = np.minimum(self.pfirst[rv, cv], self.ppos[rv] + i)
            self.pnolp[rv] += np.isnan(lv)

    def _signals(self, rows, top, second, voters):
        sums = (self.lpsum[rows], self.lpn[rows], self.entsum[rows], self.entn[rows])
        win = self.cur_win[rows]
        scores = None
        if self.scored:
            scores = (
                self.score_sum[rows],
                self.score_n[rows],
                self.score_max[rows],
                at_winner(self.class_score[rows], win),
                at_winner(self.class_score_n[rows], win),
            )
        out = signals(
            self.drawn[rows],
            self.counts[rows],
            top,
            second,
            voters,
            sums,
            self.tok_tier[rows],
            self.logt,
            scores,
        )
        last = self.last_win[rows]
        same = ((win >= 0) & (last >= 0) & (win == last)).astype(np.float64)
        out["agrees_prev"] = np.where(self.runs[rows] > 1, same, np.nan)
        out["router_p"] = self.router_p[rows, self.t[rows]]
        return out

    def _step(self, rows):
        self._receive(rows)
        win, top, second, voters = vote(
            self.counts[rows], self.clsum[rows], self.first[rows], self.nolp[rows]
        )
        self.cur_win[rows] = win
        self.cur_agree[rows] = top / np.maximum(self.drawn[rows], 1)
        remaining = self.target[rows] - self.drawn[rows]
        more = remaining > 0
        decided = (top > 0) & (top - second > remaining)
        go_on = more & ~decided
        r = rows[go_on]
        if r.size:
            rn = self._round_n(r)
            over = self._over(r, rn)
            self._finish(r[over], 2)
            ok = r[~over]
            self._ask(ok, rn[~over], self.tb.stream[self.cfg[ok], self.t[ok]])
        stopped = more & decided
        self.target[rows[stopped]] = self.drawn[rows[stopped]]
        sel = ~go_on
        self._decide(rows[sel], self._signals(rows[sel], top[sel], second[sel], voters[sel]))

    def _decide(self, rows, sig):
        if not rows.size:
            return
        tb, c, t = self.tb, self.cfg[rows], self.t[rows]
        esc = tb.esc[c, t]
        final = (t == tb.ntiers[c] - 1) | (esc < 0)
        holds = self._holds(rows, np.where(final, -1, esc), sig)
        confident = ~final & ~holds
        self._finish(rows[confident], 0)
        live = ~confident
        # exploration
        xk = tb.x_kind[c, t]
        xwhen = np.where(live & ~final & (xk > 0) & ~self.explored[rows], tb.x_when[c, t], -1)
        explore = self._holds(rows, xwhen, sig) & (xwhen >= 0)
        self.explored[rows[explore]] = True
        skip = explore & (xk == 1)
        if skip.any():
            r = rows[skip]
            self._commit(r)
            self._enter(r, tb.ntiers[self.cfg[r]] - 1)
        live &= ~skip
        raise_t = explore & (xk == 2)
        if raise_t.any():
            r = rows[raise_t]
            extra = np.where(
                tb.x_extra[self.cfg[r], self.t[r]] > 0,
                tb.x_extra[self.cfg[r], self.t[r]],
                self._k(r, self.t[r]),
            )
            ok = ~self._over(r, extra)
            ro = r[ok]
            self.target[ro] += extra[ok]
            self._ask(ro, extra[ok], tb.x_stream[self.cfg[ro], self.t[ro]])
            taken = np.zeros(rows.size, bool)
            taken[np.flatnonzero(raise_t)[ok]] = True
            live &= ~taken
        # retry
        rwhen = np.where(live & (tb.r_max[c, t] > self.retries[rows]), tb.r_when[c, t], -1)
        retry = self._holds(rows, rwhen, sig) & (rwhen >= 0)
        if retry.any():
            ri = np.flatnonzero(retry)
            r = rows[ri]
            extra = tb.r_extra[self.cfg[r], self.t[r]]
            ok = ~self._over(r, extra)
            retry[ri[~ok]] = False
            ro = r[ok]
            self.retries[ro] += 1
            self.target[ro] += extra[ok]
            self._ask(ro, extra[ok], tb.r_stream[self.cfg[ro], self.t[ro]])
        live &= ~retry
        last = live & final
        self._finish(rows[last], 1)
        up = live & ~final
        if up.any():
            r = rows[up]
            self._commit(r)
            self._enter(r, self.t[r] + 1)

    def run(self) -> Outcome:
        self._enter(np.arange(self.M), self.start.copy(), first=True)
        for _ in range(100000):
            rows = np.flatnonzero(~self.done)
            if not rows.size:
                break
            self._step(rows)
        else:  # pragma: no cover - every step asks or finishes
            raise RuntimeError("vectorised simulation did not terminate")
        pwin, _, _, _ = vote(self.pcounts, self.pclsum, self.pfirst, self.pnolp)
        pol = self.tb.policy[self.cfg]
        win = np.where(pol == 0, self.last_win, np.where(pol == 1, self.best_win, pwin))
        A = self.A
        right = A.correct[self.prob, np.maximum(win, 0)] & (win >= 0)
        correct = np.where(A.graded[self.prob], right.astype(float), np.nan)
        shape = (self.C, self.P)
        return Outcome(
            correct=correct.reshape(shape),
            cost=self.cost_prev.reshape(shape),
            samples=self.total.reshape(shape),
            tokens=self.tokens.reshape(shape),
            tiers_used=self.runs.reshape(shape),
            reason=self.reason.reshape(shape),
            reached=self.reached.reshape(self.C, self.P, -1),
            winner=win.reshape(shape),
        )
