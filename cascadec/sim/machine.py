"""The vectorised simulator's general path: the runtime's job state machine over arrays.

Every (configuration, problem) pair is an element, and each step serves every element's
pending ask from the bank, votes, measures the signals and decides — stop, early stop, retry,
explore, skip to the top, escalate, out of budget — with the runtime's own rules
(:mod:`cascadec.runtime.rules`, called here on arrays), the same tie-breaks and the same
floating-point order of operations as :mod:`cascadec.runtime.jobs`, so its decisions are the
runtime's decisions. Configurations whose tiers decide on their own samples
only take the faster :mod:`.sweep` instead (see :func:`.vector.simulate_vector`).
"""

from __future__ import annotations

import numpy as np

from cascadec.errors import DataError
from cascadec.plan import PlanStrategy, resolve_problems, route_key
from cascadec.runtime import rules
from cascadec.runtime.rules import AfterTier
from cascadec.sim.arrays import BIG, BankArrays, log_terms
from cascadec.sim.tables import (
    BUDGET,
    NO_EXPLORATION,
    POLICY_LAST_TIER,
    POLICY_MOST_CONFIDENT,
    POLICY_POOLED,
    REASONS,
    SKIP_TO_TOP,
    OutcomeArrays,
    Tables,
    veval,
)
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
    """The job state machine over (configuration, problem) elements, one step for all at once.

    Element ``e`` is configuration ``config[e]`` on problem ``problem[e]``; every per-element
    array below is indexed by it. A tier's running figures (votes, sums, tokens) are reset when
    the element enters a tier; the ``pooled_*`` ones span every tier (the pooled answer)."""

    def __init__(self, tables: Tables, bank: BankArrays, strategies: list[PlanStrategy]):
        self.tables, self.bank, self.prefix = tables, bank, bank.prefix
        n_configs, n_problems, n_tiers = tables.C, len(bank.problems), tables.T
        n = n_configs * n_problems
        self.n_configs, self.n_problems, self.n_elements = n_configs, n_problems, n
        self.config = np.repeat(np.arange(n_configs), n_problems)
        self.problem = np.tile(np.arange(n_problems), n_configs)
        first_k = np.empty(n, dtype=np.int64)  # the first tier's k (adaptive k changes it)
        start = np.empty(n, dtype=np.int64)  # the tier each element starts at
        self._routes: dict = {}  # router predictions per (hash, heads), read once per machine
        for c, s in enumerate(strategies):
            rows = slice(c * n_problems, (c + 1) * n_problems)
            if s.adaptive_k is None and s.route is None:  # every problem runs the tiers as written
                start[rows] = 0
                first_k[rows] = s.tiers[0].k
                continue
            if s.adaptive_k is None:  # routed only: the start tiers over arrays, as plan.route_start
                start[rows] = route_starts(s, bank.problems, self._routes)
                first_k[rows] = s.tiers[0].k
                continue
            resolved = resolve_problems(s, [p.features for p in bank.problems])
            for p, tiers in enumerate(resolved):
                start[c * n_problems + p] = len(s.tiers) - len(tiers)
                first_k[c * n_problems + p] = tiers[0].k if len(tiers) == len(s.tiers) else s.tiers[0].k
        self.first_k, self.start = first_k, start
        classes = bank.n_classes
        ints = lambda: np.zeros(n, dtype=np.int64)  # noqa: E731
        reals = lambda: np.zeros(n)  # noqa: E731
        self.tier = start.copy()  # the tier each element is on
        self.done = np.zeros(n, bool)
        # the tier's plan so far and what it drew
        self.target, self.drawn, self.retries = ints(), ints(), ints()
        self.explored = np.zeros(n, bool)
        self.total_samples, self.pooled_drawn = ints(), ints()  # every tier together
        self.ask_n, self.ask_stream = ints(), ints()  # the pending ask
        # the tier's vote and signal sums
        self.votes = np.zeros((n, classes), dtype=np.int64)
        self.class_logprob = np.zeros((n, classes))
        self.first = np.full((n, classes), BIG, dtype=np.int64)  # each class's first sample
        self.no_logprob, self.tier_tokens = ints(), ints()
        self.logprob_sum, self.logprob_count = reals(), ints()
        self.entropy_sum, self.entropy_count = reals(), ints()
        # the pooled vote (every tier's voting samples)
        self.pooled_votes = np.zeros((n, classes), dtype=np.int64)
        self.pooled_class_logprob = np.zeros((n, classes))
        self.pooled_first = np.full((n, classes), BIG, dtype=np.int64)
        self.pooled_no_logprob, self.tokens = ints(), ints()
        # cost: tokens x cost per token + recorded costs; tiers already over in ``cost_before``
        self.tier_priced_tokens, self.tier_recorded_cost = ints(), reals()
        self.cost_before = reals()
        self.scored = bank.score is not None
        self.score_sum, self.score_count, self.score_max = reals(), ints(), np.full(n, np.nan)
        self.class_score = np.zeros((n, classes) if self.scored else (0, 0))
        self.class_score_count = np.zeros((n, classes) if self.scored else (0, 0), dtype=np.int64)
        # winners: this tier's, the last finished tier's, the most confident finished tier's
        self.tier_winner, self.last_winner, self.best_winner = ints() - 1, ints() - 1, ints() - 1
        self.tier_agreement = reals()
        self.best_has_winner, self.best_agreement = ints() - 1, np.full(n, -np.inf)
        self.tiers_run, self.stop_reason = ints(), ints()
        self.reached = np.zeros((n, n_tiers), bool)
        self.log_terms = log_terms(int(bank.n * 4 + 64))
        self.mixed = np.zeros(n, bool)  # the tier drew from more than one stream (retry/explore temperature)
        self.pooled = tables.policy[self.config] == POLICY_POOLED
        # learned routing: the router's P(right) per (element, tier), known before any sample
        self.router_p = np.full((n, n_tiers), np.nan)
        for c, s in enumerate(strategies):
            if s.route is not None and n_problems:
                self.router_p[c * n_problems : (c + 1) * n_problems, : len(s.tiers)] = route_matrix(
                    s, bank.problems, self._routes
                )

    # --- per-element tier parameters --------------------------------------------------------
    def _k(self, rows, tier):
        return np.where(tier == 0, self.first_k[rows], self.tables.k[self.config[rows], tier])

    def _round_n(self, rows):
        return rules.round_n(self.target[rows] - self.drawn[rows], self.tables.round_size[self.config[rows]])

    def _cost(self, rows):
        per_token = self.tables.cost_per_token[self.config[rows], self.tier[rows]]
        return self.cost_before[rows] + (
            self.tier_priced_tokens[rows] * per_token + self.tier_recorded_cost[rows]
        )

    def _over(self, rows, n):
        c = self.config[rows]
        return rules.over_budget(
            self.total_samples[rows], self._cost(rows), n, self.tables.max_samples[c], self.tables.max_cost[c]
        )

    def _holds(self, rows, ids, sig):
        """Condition ``ids[i]`` (an index into the tables' conditions; < 0: none, never holds)
        over row ``i``'s signals."""
        out = np.zeros(rows.size, bool)
        for u in np.unique(ids):
            if u < 0:
                continue
            sel = ids == u
            sub = {name: v[sel] for name, v in sig.items()}
            out[sel] = np.asarray(veval(self.tables.asts[u], sub, int(sel.sum())), dtype=bool)
        return out

    # --- transitions ----------------------------------------------------------------------
    def _ask(self, rows, n, stream):
        self.ask_n[rows] = n
        self.ask_stream[rows] = stream

    def _enter(self, rows, pos, first=False):
        if not first and rows.size:
            over = self._over(rows, self._k(rows, pos))
            self._finish(rows[over], BUDGET, commit=False)
            rows, pos = rows[~over], pos[~over]
        if not rows.size:
            return
        self.tier[rows] = pos
        self.target[rows] = self._k(rows, pos)
        self.drawn[rows] = 0
        self.retries[rows] = 0
        self.explored[rows] = False
        self.votes[rows] = 0
        self.class_logprob[rows] = 0.0
        self.first[rows] = BIG
        for a in (self.no_logprob, self.tier_tokens, self.logprob_count, self.entropy_count):
            a[rows] = 0
        for a in (self.logprob_sum, self.entropy_sum, self.tier_priced_tokens, self.tier_recorded_cost):
            a[rows] = 0
        self.score_sum[rows], self.score_count[rows] = 0, 0
        self.score_max[rows] = np.nan
        if self.scored:
            self.class_score[rows] = 0.0
            self.class_score_count[rows] = 0
        self.reached[rows, pos] = True
        self.mixed[rows] = False
        self.tiers_run[rows] += 1
        self._ask(rows, self._round_n(rows), self.tables.stream[self.config[rows], pos])

    def _commit(self, rows):
        """The tier is over: its vote is the one the final-answer policies see."""
        self.cost_before[rows] = self._cost(rows)
        self.tier_tokens[rows] = 0
        self.tier_priced_tokens[rows] = 0
        self.tier_recorded_cost[rows] = 0.0
        win = self.tier_winner[rows]
        self.last_winner[rows] = win
        has = (win >= 0).astype(np.int64)
        agree = self.tier_agreement[rows]
        better = rules.more_confident(has, agree, self.best_has_winner[rows], self.best_agreement[rows])
        r = rows[better]
        self.best_has_winner[r], self.best_agreement[r], self.best_winner[r] = (
            has[better],
            agree[better],
            win[better],
        )

    def _finish(self, rows, reason, commit=True):
        """Elements ``rows`` are done, for ``reason`` (an index into :data:`REASONS`)."""
        if not rows.size:
            return
        if commit:
            self._commit(rows)
        self.done[rows] = True
        self.ask_n[rows] = 0
        self.stop_reason[rows] = reason

    # --- one step ---------------------------------------------------------------------------
    def _receive(self, rows):
        """Serve every pending ask. A tier whose samples all come from one stream reads prefix
        sums (sequential sums, so bit-identical to the runtime's); the rest go sample by sample."""
        n = self.ask_n[rows]
        stream = self.tables.stream[self.config[rows], self.tier[rows]]
        self.mixed[rows] |= self.ask_stream[rows] != stream
        fast = ~self.mixed[rows] & ~self.pooled[rows]
        if fast.any():
            self._receive_prefix(rows[fast], n[fast])
        slow = ~fast
        if slow.any():
            self._receive_each(rows[slow], n[slow])
        self.drawn[rows] += n
        self.total_samples[rows] += n
        self.pooled_drawn[rows] += n

    def _receive_prefix(self, r, n):
        bank, pre = self.bank, self.prefix
        s, p = self.ask_stream[r], self.problem[r]
        a, b = self.drawn[r], self.drawn[r] + n
        if (b > bank.avail[s, p]).any():
            self._missing(r, b - 1, s, p)
        self.votes[r] = pre.votes[s, p, b]
        self.class_logprob[r] = pre.class_logprob[s, p, b]
        fp = pre.first[s, p]
        self.first[r] = np.where(fp < b[:, None], fp, BIG)
        self.no_logprob[r] = pre.no_logprob[s, p, b]
        self.logprob_sum[r], self.logprob_count[r] = pre.logprob_sum[s, p, b], pre.logprob_count[s, p, b]
        self.entropy_sum[r], self.entropy_count[r] = pre.entropy_sum[s, p, b], pre.entropy_count[s, p, b]
        self.tier_tokens[r] = pre.tokens[s, p, b]
        self.tokens[r] += pre.tokens[s, p, b] - pre.tokens[s, p, a]
        self.tier_priced_tokens[r] = pre.priced_tokens[s, p, b]
        self.tier_recorded_cost[r] = pre.recorded_cost[s, p, b]
        sc = pre.scores
        if sc is not None:
            self.score_sum[r], self.score_count[r], self.score_max[r] = (
                sc.sum[s, p, b],
                sc.count[s, p, b],
                sc.max[s, p, b],
            )
            self.class_score[r] = sc.class_sum[s, p, b]
            self.class_score_count[r] = sc.class_count[s, p, b]

    def _missing(self, r, idx, s, p):
        bank = self.bank
        bad = int(np.flatnonzero(idx >= bank.avail[s, p])[0])
        model, temp, _ = next(k for k, v in bank.streams.items() if v == s[bad])
        raise DataError(
            f"the sample bank lacks samples for model {model!r}, problem "
            f"{bank.problems[p[bad]].id!r}, temperature {temp:g}: index {idx[bad]} asked, "
            f"{bank.avail[s[bad], p[bad]]} recorded; record a larger bank or lower k"
        )

    def _receive_each(self, rows, n):
        bank = self.bank
        for i in range(int(n.max())):
            r = rows[n > i]
            idx = self.drawn[r] + i
            s, p = self.ask_stream[r], self.problem[r]
            if (idx >= bank.avail[s, p]).any():
                self._missing(r, idx, s, p)
            c, lp, ent = bank.cls[s, p, idx], bank.lp[s, p, idx], bank.ent[s, p, idx]
            tk = bank.tok[s, p, idx]
            has_lp, has_ent = ~np.isnan(lp), ~np.isnan(ent)
            self.logprob_sum[r] += np.where(has_lp, lp, 0.0)
            self.logprob_count[r] += has_lp
            self.entropy_sum[r] += np.where(has_ent, ent, 0.0)
            self.entropy_count[r] += has_ent
            self.tier_tokens[r] += tk
            self.tokens[r] += tk
            cost = bank.cost[s, p, idx]
            priced = np.isnan(cost)
            self.tier_priced_tokens[r] += np.where(priced, tk, 0)
            self.tier_recorded_cost[r] += np.where(priced, 0.0, cost)
            if self.scored:
                sc = bank.score[s, p, idx]
                known = ~np.isnan(sc)
                self.score_sum[r] += np.where(known, sc, 0.0)
                self.score_count[r] += known
                self.score_max[r] = np.fmax(self.score_max[r], sc)
            v = c >= 0
            rv, cv, lv = r[v], c[v], lp[v]
            self.votes[rv, cv] += 1
            self.class_logprob[rv, cv] += lv
            if self.scored:
                sv = bank.score[s, p, idx][v]
                self.class_score[rv, cv] += np.where(np.isnan(sv), 0.0, sv)
                self.class_score_count[rv, cv] += ~np.isnan(sv)
            self.first[rv, cv] = np.minimum(self.first[rv, cv], self.drawn[rv] + i)
            self.no_logprob[rv] += np.isnan(lv)
            self.pooled_votes[rv, cv] += 1
            self.pooled_class_logprob[rv, cv] += lv
            self.pooled_first[rv, cv] = np.minimum(self.pooled_first[rv, cv], self.pooled_drawn[rv] + i)
            self.pooled_no_logprob[rv] += np.isnan(lv)

    def _signals(self, rows, top, second, voters):
        sums = (
            self.logprob_sum[rows],
            self.logprob_count[rows],
            self.entropy_sum[rows],
            self.entropy_count[rows],
        )
        win = self.tier_winner[rows]
        scores = None
        if self.scored:
            scores = (
                self.score_sum[rows],
                self.score_count[rows],
                self.score_max[rows],
                at_winner(self.class_score[rows], win),
                at_winner(self.class_score_count[rows], win),
            )
        out = signals(
            self.drawn[rows],
            self.votes[rows],
            top,
            second,
            voters,
            sums,
            self.tier_tokens[rows],
            self.log_terms,
            scores,
        )
        last = self.last_winner[rows]
        same = ((win >= 0) & (last >= 0) & (win == last)).astype(np.float64)
        out["agrees_prev"] = np.where(self.tiers_run[rows] > 1, same, np.nan)
        out["router_p"] = self.router_p[rows, self.tier[rows]]
        return out

    def _step(self, rows):
        self._receive(rows)
        win, top, second, voters = vote(
            self.votes[rows], self.class_logprob[rows], self.first[rows], self.no_logprob[rows]
        )
        self.tier_winner[rows] = win
        self.tier_agreement[rows] = top / np.maximum(self.drawn[rows], 1)
        remaining = self.target[rows] - self.drawn[rows]
        settled = rules.vote_decided(top, second, remaining)  # the ``decided`` rule
        go_on = rules.keep_sampling(remaining, settled)
        r = rows[go_on]
        if r.size:
            n = self._round_n(r)
            over = self._over(r, n)
            self._finish(r[over], BUDGET)
            ok = r[~over]
            self._ask(ok, n[~over], self.tables.stream[self.config[ok], self.tier[ok]])
        stopped = rows[(remaining > 0) & settled]  # early stop: the tier ends on what it drew
        self.target[stopped] = self.drawn[stopped]
        sel = ~go_on
        self._decide(rows[sel], self._signals(rows[sel], top[sel], second[sel], voters[sel]))

    def _decide(self, rows, sig):
        """The tier drew what it planned: :func:`rules.after_tier` over every element at once."""
        if not rows.size:
            return
        tables, c, t = self.tables, self.config[rows], self.tier[rows]
        escalate_if = tables.escalate_if[c, t]
        final = rules.is_final(t, tables.ntiers[c], escalate_if >= 0)
        escalate = self._holds(rows, np.where(final, -1, escalate_if), sig)
        kind = tables.explore_kind[c, t]
        may_explore = escalate & (kind != NO_EXPLORATION) & ~self.explored[rows]
        explore = self._holds(rows, np.where(may_explore, tables.explore_when[c, t], -1), sig)
        explore_extra = np.where(tables.explore_extra[c, t] > 0, tables.explore_extra[c, t], self._k(rows, t))
        may_retry = (final | escalate) & (tables.retry_max[c, t] > self.retries[rows])
        retry = self._holds(rows, np.where(may_retry, tables.retry_when[c, t], -1), sig)
        retry_extra = tables.retry_extra[c, t]
        step = rules.after_tier(
            final,
            escalate,
            explore=explore,
            skip=kind == SKIP_TO_TOP,
            explore_fits=~self._over(rows, explore_extra),
            retry=retry,
            retry_fits=~self._over(rows, retry_extra),
        )
        for after, reason in rules.STOP_REASONS.items():
            self._finish(rows[step == after], REASONS.index(reason))
        skip = step == AfterTier.SKIP_TO_TOP
        self.explored[rows[skip]] = True
        r = rows[skip]
        self._commit(r)
        self._enter(r, tables.ntiers[self.config[r]] - 1)
        hotter = step == AfterTier.EXPLORE
        r = rows[hotter]
        self.explored[r] = True
        self.target[r] += explore_extra[hotter]
        self._ask(r, explore_extra[hotter], tables.explore_stream[self.config[r], self.tier[r]])
        again = step == AfterTier.RETRY
        r = rows[again]
        self.retries[r] += 1
        self.target[r] += retry_extra[again]
        self._ask(r, retry_extra[again], tables.retry_stream[self.config[r], self.tier[r]])
        up = step == AfterTier.ESCALATE
        r = rows[up]
        self._commit(r)
        self._enter(r, self.tier[r] + 1)

    def run(self) -> OutcomeArrays:
        self._enter(np.arange(self.n_elements), self.start.copy(), first=True)
        for _ in range(100000):
            rows = np.flatnonzero(~self.done)
            if not rows.size:
                break
            self._step(rows)
        else:  # pragma: no cover - every step asks or finishes
            raise RuntimeError("vectorised simulation did not terminate")
        pooled, _, _, _ = vote(
            self.pooled_votes, self.pooled_class_logprob, self.pooled_first, self.pooled_no_logprob
        )
        policy = self.tables.policy[self.config]
        win = np.select(
            [policy == POLICY_LAST_TIER, policy == POLICY_MOST_CONFIDENT],
            [self.last_winner, self.best_winner],
            pooled,
        )
        bank = self.bank
        right = bank.correct[self.problem, np.maximum(win, 0)] & (win >= 0)
        correct = np.where(bank.graded[self.problem], right.astype(float), np.nan)
        shape = (self.n_configs, self.n_problems)
        return OutcomeArrays(
            correct=correct.reshape(shape),
            cost=self.cost_before.reshape(shape),
            samples=self.total_samples.reshape(shape),
            tokens=self.tokens.reshape(shape),
            tiers_used=self.tiers_run.reshape(shape),
            reason=self.stop_reason.reshape(shape),
            reached=self.reached.reshape(self.n_configs, self.n_problems, -1),
            winner=win.reshape(shape),
        )
