"""Prometheus metrics of one server (its own registry, so several servers never mix).

Per strategy (its canonical key): requests by outcome, tiers reached, samples and tokens by
model, cost (tokens x cost per token), the reference cost (the largest model writing the same
answer alone) and the cost ratio of the totals (``cascadec_cost_ratio`` = sum of cost / sum of
reference cost: the one cost ratio, as simulate and calibrate report it; a mean of the responses'
per-request ``cost_relative`` is not it) and latency; per model: engine calls and how many
requests each one batched.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # *_created series only double the output

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def reference_cost(outcome, reference_cost_per_token: float) -> float:
    """The largest model writing the same answer alone: what the cascade must beat. Per request,
    ``cost_relative`` = cost / this; over many requests the one ratio is sum(cost) / sum(this)
    (``cascadec_cost_ratio``), never a mean of per-request ratios."""
    return max(1, outcome.final.num_tokens if outcome.final else 1) * reference_cost_per_token


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "cascadec_requests", "Requests by strategy and HTTP status", ["strategy", "status"], registry=r
        )
        self.tiers = Counter(
            "cascadec_tier_reached", "Requests that reached a tier", ["strategy", "tier", "model"], registry=r
        )
        self.samples = Counter("cascadec_samples", "Samples generated", ["strategy", "model"], registry=r)
        self.tokens = Counter(
            "cascadec_tokens", "Tokens (prompt, completion)", ["strategy", "type"], registry=r
        )
        self.cost = Counter("cascadec_cost", "Generated tokens x cost per token", ["strategy"], registry=r)
        self.reference_cost = Counter(
            "cascadec_reference_cost",
            "The largest model writing each answer alone (the cost ratio's denominator)",
            ["strategy"],
            registry=r,
        )
        self.cost_ratio = Gauge(
            "cascadec_cost_ratio",
            "Total cost over total reference cost of the requests so far (a ratio of totals)",
            ["strategy"],
            registry=r,
        )
        self.reference_cost_per_token: float | None = None  # set by the server: the largest model's
        self._totals: dict[str, list[float]] = {}
        self.latency = Histogram(
            "cascadec_request_seconds", "Request latency", ["strategy"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch = Histogram(
            "cascadec_engine_batch_requests",
            "Requests served by one engine call",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("cascadec_requests_in_flight", "Requests being answered", registry=r)

    def finished(self, strategy: str, outcome, seconds: float) -> None:
        job = outcome.job
        for run in job.runs:
            self.tiers.labels(strategy, str(run.index), run.tier.model).inc()
            self.samples.labels(strategy, run.tier.model).inc(len(run.samples))
        self.tokens.labels(strategy, "prompt").inc(outcome.prompt_tokens)
        self.tokens.labels(strategy, "completion").inc(outcome.completion_tokens)
        self.cost.labels(strategy).inc(job.cost)
        if self.reference_cost_per_token:
            ref = reference_cost(outcome, self.reference_cost_per_token)
            self.reference_cost.labels(strategy).inc(ref)
            totals = self._totals.setdefault(strategy, [0.0, 0.0])
            totals[0] += job.cost
            totals[1] += ref
            self.cost_ratio.labels(strategy).set(totals[0] / totals[1] if totals[1] else float("nan"))
        self.latency.labels(strategy).observe(seconds)

    def status(self, strategy: str, status: int) -> None:
        self.requests.labels(strategy, str(status)).inc()

    def engine_batch(self, model: str, size: int) -> None:
        self.batch.labels(model).observe(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)
