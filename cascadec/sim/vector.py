"""The vectorised simulator: many configurations × many problems at once, with numpy.

It is the runtime's job state machine (:mod:`cascadec.runtime.jobs`) written over arrays:
every (configuration, problem) pair is an element, and each step serves every element's
pending ask from the bank, votes, measures the signals and decides — stop, early stop, retry,
explore, skip to the top, escalate, out of budget — with the same rules, the same tie-breaks
and the same floating-point order of operations, so its decisions are the runtime's decisions
(the property tests in ``tests/property/test_sim_vector.py`` compare it with replay runs).
Problems whose answers do not form a clean equivalence partition are left to the exact path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from cascadec.core.conditions import (
    COMPARISONS,
    And,
    Bool,
    Compare,
    Condition,
    Not,
    Number,
    Or,
    Signal,
    parse_condition,
)
from cascadec.errors import DataError
from cascadec.plan import PlanStrategy, resolve_tiers
from cascadec.runtime.outcomes import StopReason
from cascadec.sim.arrays import BankArrays, log_terms

BIG = np.iinfo(np.int64).max // 4
POLICIES = ("last_tier", "most_confident", "pooled")
REASONS = tuple(r.value for r in StopReason)  # indices of Outcome.reason


@cache
def _ast(text: str) -> Condition:
    return parse_condition(text)


def veval(node: Condition, sig: dict[str, np.ndarray], size: int):
    """Evaluate a condition AST over arrays of signals (the runtime evaluates it one problem at a time)."""
    if isinstance(node, Signal):
        return sig[node.name]
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Bool):
        return np.full(size, node.value)
    if isinstance(node, Compare):
        return np.asarray(COMPARISONS[node.op](veval(node.left, sig, size), veval(node.right, sig, size)))
    if isinstance(node, Not):
        return ~np.asarray(veval(node.operand, sig, size), dtype=bool)
    if isinstance(node, And | Or):
        parts = [np.asarray(veval(o, sig, size), dtype=bool) for o in node.operands]
        out = parts[0]
        for part in parts[1:]:
            out = (out & part) if isinstance(node, And) else (out | part)
        return out
    raise TypeError(f"unknown condition node {type(node).__name__}")


@dataclass
class Outcome:
    """Per (configuration, problem): what the run would record. Arrays are [C, P]."""

    correct: np.ndarray  # float: 1, 0, or NaN without gold
    cost: np.ndarray
    samples: np.ndarray
    tokens: np.ndarray
    tiers_used: np.ndarray
    reason: np.ndarray  # index into REASONS
    reached: np.ndarray  # [C, P, T] the tier ran
    winner: np.ndarray  # answer class of the final answer (-1: none)


class _Tables:
    """Per configuration and tier: the numbers the state machine reads (padded to the longest cascade)."""

    def __init__(self, strategies: list[PlanStrategy], arrays: BankArrays):
        C = len(strategies)
        T = max(len(s.tiers) for s in strategies)
        self.C, self.T = C, T
        self.conds: list[str] = []
        ids: dict[str, int] = {}

        def cid(text: str | None) -> int:
            if text is None:
                return -1
            if text not in ids:
                ids[text] = len(self.conds)
                self.conds.append(text)
            return ids[text]

        z = lambda dtype=np.int64, fill=0: np.full((C, T), fill, dtype=dtype)  # noqa: E731
        self.ntiers = np.array([len(s.tiers) for s in strategies])
        self.k, self.stream, self.esc = z(), z(), z(fill=-1)
        self.cpt = z(np.float64, 0.0)
        self.r_max, self.r_when, self.r_extra, self.r_stream = z(), z(fill=-1), z(), z()
        self.x_kind, self.x_when, self.x_extra, self.x_stream = z(), z(fill=-1), z(), z()
        self.round = np.array([s.early_stop.round_size if s.early_stop else 0 for s in strategies])
        b = [s.budget for s in strategies]
        self.max_s = np.array(
            [x.max_samples_per_problem if x and x.max_samples_per_problem else BIG for x in b]
        )
        self.max_c = np.array([x.max_cost_per_problem if x and x.max_cost_per_problem else np.inf for x in b])
        self.policy = np.array([POLICIES.index(s.final_answer) for s in strategies])
        for c, s in enumerate(strategies):
            for t, tier in enumerate(s.tiers):
                self.k[c, t] = tier.k
                self.stream[c, t] = arrays.stream(tier.model, tier.temperature, s.answer)
                self.cpt[c, t] = tier.cost_per_token
                self.esc[c, t] = cid(tier.escalate_if)
                if tier.retry is not None:
                    rr = tier.retry
                    self.r_max[c, t], self.r_when[c, t], self.r_extra[c, t] = rr.max, cid(rr.when), rr.extra_k
                    temp = rr.temperature if rr.temperature is not None else tier.temperature
                    self.r_stream[c, t] = arrays.stream(tier.model, temp, s.answer)
                if tier.explore is not None:
                    ex = tier.explore
                    self.x_kind[c, t] = 1 if ex.action == "skip_to_top" else 2
                    self.x_when[c, t], self.x_extra[c, t] = cid(ex.when), ex.extra_k
                    temp = ex.temperature if ex.temperature is not None else tier.temperature
                    self.x_stream[c, t] = arrays.stream(tier.model, temp, s.answer)
        self.asts = [_ast(text) for text in self.conds]


@dataclass
class _Prefix:
    """Prefix sums over each stream's samples, index b = the first b samples (cumsum is sequential)."""

    cc: np.ndarray  # [S, P, N+1, K] votes per class
    cl: np.ndarray  # [S, P, N+1, K] sum of members' mean logprobs per class
    first: np.ndarray  # [S, P, K] first index of each class (BIG: never)
    nolp: np.ndarray  # [S, P, N+1] voting samples without a logprob
    lps: np.ndarray
    lpn: np.ndarray
    ents: np.ndarray
    entn: np.ndarray
    tok: np.ndarray


def _prefixes(A: BankArrays) -> _Prefix:
    S, P, N = A.cls.shape
    K = A.n_classes

    def cum(x):
        out = np.zeros((*x.shape[:2], N + 1, *x.shape[3:]), dtype=x.dtype)
        out[:, :, 1:] = np.cumsum(x, axis=2)
        return out

    onehot = A.cls[..., None] == np.arange(K)
    lp_known, ent_known = ~np.isnan(A.lp), ~np.isnan(A.ent)
    first = np.where(onehot.any(axis=2), onehot.argmax(axis=2), BIG)
    return _Prefix(
        cc=cum(onehot.astype(np.int64)),
        cl=cum(np.where(onehot, A.lp[..., None], 0.0)),
        first=first,
        nolp=cum(((A.cls >= 0) & ~lp_known).astype(np.int64)),
        lps=cum(np.where(lp_known, A.lp, 0.0)),
        lpn=cum(lp_known.astype(np.int64)),
        ents=cum(np.where(ent_known, A.ent, 0.0)),
        entn=cum(ent_known.astype(np.int64)),
        tok=cum(A.tok),
    )


CHUNK_ELEMENTS = 250_000  # configurations × problems per pass: bounds memory (~100 B × classes each)


def simulate_vector(strategies: list[PlanStrategy], arrays: BankArrays) -> Outcome:
    """Run every strategy over every problem of ``arrays`` (exact_only problems included: callers
    replace those with the exact path's results). Configurations go in chunks of bounded size."""
    strategies = list(strategies)
    per = max(1, CHUNK_ELEMENTS // max(1, len(arrays.problems)))
    parts = [
        _Machine(_Tables(strategies[i : i + per], arrays), arrays, strategies[i : i + per]).run()
        for i in range(0, len(strategies), per)
    ]
    if len(parts) == 1:
        return parts[0]
    T = max(p.reached.shape[2] for p in parts)
    reached = [np.pad(p.reached, ((0, 0), (0, 0), (0, T - p.reached.shape[2]))) for p in parts]
    return Outcome(
        **{
            f: np.concatenate([getattr(p, f) for p in parts])
            for f in Outcome.__dataclass_fields__
            if f != "reached"
        },
        reached=np.concatenate(reached),
    )


class _Machine:
    def __init__(self, tables: _Tables, A: BankArrays, strategies: list[PlanStrategy]):
        self.tb, self.A = tables, A
        C, P, T = tables.C, len(A.problems), tables.T
        M = C * P
        self.C, self.P, self.M = C, P, M
        self.cfg = np.repeat(np.arange(C), P)
        self.prob = np.tile(np.arange(P), C)
        k0 = np.empty(M, dtype=np.int64)
        start = np.empty(M, dtype=np.int64)
        for c, s in enumerate(strategies):
            if s.adaptive_k is None:  # every problem runs the tiers as written
                start[c * P : (c + 1) * P] = 0
                k0[c * P : (c + 1) * P] = s.tiers[0].k
                continue
            col = s.adaptive_k.column
            resolved = resolve_tiers(s, [p.features.get(col) for p in A.problems])
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
        self.cost_prev = f64()
        self.cur_win, self.last_win, self.best_win = i64() - 1, i64() - 1, i64() - 1
        self.cur_agree = f64()
        self.best_has, self.best_agree = i64() - 1, np.full(M, -np.inf)
        self.runs, self.reason = i64(), i64()
        self.reached = np.zeros((M, T), bool)
        self.logt = log_terms(int(A.n * 4 + 64))
        self.mixed = np.zeros(M, bool)  # the tier drew from more than one stream (retry/explore temperature)
        self.pooled = tables.policy[self.cfg] == POLICIES.index("pooled")
        self.pre = _prefixes(A)

    # --- per-element tier parameters --------------------------------------------------------
    def _k(self, rows, t):
        return np.where(t == 0, self.k0[rows], self.tb.k[self.cfg[rows], t])

    def _round_n(self, rows):
        remaining = self.target[rows] - self.drawn[rows]
        rs = self.tb.round[self.cfg[rows]]
        return np.where(rs > 0, np.minimum(rs, remaining), remaining)

    def _cost(self, rows):
        return self.cost_prev[rows] + self.tok_tier[rows] * self.tb.cpt[self.cfg[rows], self.t[rows]]

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
        self.reached[rows, pos] = True
        self.mixed[rows] = False
        self.runs[rows] += 1
        self._ask(rows, self._round_n(rows), self.tb.stream[self.cfg[rows], pos])

    def _commit(self, rows):
        """The tier is over: its vote is the one the final-answer policies see."""
        self.cost_prev[rows] = self._cost(rows)
        self.tok_tier[rows] = 0
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
            v = c >= 0
            rv, cv, lv = r[v], c[v], lp[v]
            self.counts[rv, cv] += 1
            self.clsum[rv, cv] += lv
            self.first[rv, cv] = np.minimum(self.first[rv, cv], self.drawn[rv] + i)
            self.nolp[rv] += np.isnan(lv)
            self.pcounts[rv, cv] += 1
            self.pclsum[rv, cv] += lv
            self.pfirst[rv, cv] = np.minimum(self.pfirst[rv, cv], self.ppos[rv] + i)
            self.pnolp[rv] += np.isnan(lv)

    @staticmethod
    def _vote(counts, clsum, first, nolp):
        """(winner class or -1, top, second, voters): the runtime's ranking of clusters."""
        top = counts.max(axis=1)
        second = np.sort(counts, axis=1)[:, -2] if counts.shape[1] > 1 else np.zeros_like(top)
        voters = counts.sum(axis=1)
        cand = (counts == top[:, None]) & (counts > 0)
        mean = clsum / np.where(counts > 0, counts, 1)
        key = np.where(cand, mean, -np.inf)
        best = key.max(axis=1)
        use_lp = (nolp == 0)[:, None]
        cand = np.where(use_lp, cand & (mean == best[:, None]), cand)
        win = np.where(cand, first, BIG).argmin(axis=1)
        return np.where(top > 0, win, -1), top, second, voters

    def _signals(self, rows, top, second, voters):
        k = self.drawn[rows]
        denom = np.maximum(k, 1)
        ranked = -np.sort(-self.counts[rows], axis=1)
        acc = np.zeros(rows.size)
        vcol = np.minimum(voters, self.logt.shape[1] - 1)
        for j in range(ranked.shape[1]):
            acc = acc + self.logt[ranked[:, j], vcol]
        with np.errstate(invalid="ignore", divide="ignore"):
            lp = np.where(self.lpn[rows] > 0, self.lpsum[rows] / self.lpn[rows], np.nan)
            te = np.where(self.entn[rows] > 0, self.entsum[rows] / self.entn[rows], np.nan)
        return {
            "agreement": top / denom,
            "margin": (top - second) / denom,
            "entropy": np.where(voters > 0, -acc, 0.0),
            "no_answer": (k - voters) / denom,
            "mean_logprob": lp,
            "token_entropy": te,
            "tokens": self.tok_tier[rows].astype(np.float64),
            "k": k.astype(np.float64),
        }

    def _step(self, rows):
        self._receive(rows)
        win, top, second, voters = self._vote(
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
        pwin, _, _, _ = self._vote(self.pcounts, self.pclsum, self.pfirst, self.pnolp)
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
