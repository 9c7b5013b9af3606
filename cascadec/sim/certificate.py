"""A calibrated spec carries its certificate: comment lines any YAML reader skips, one of them JSON.

The spec still compiles like any other; ``read_certificate`` gets the guarantee back (the demo
prints it beside the measured figures).
"""

from __future__ import annotations

import json
from pathlib import Path

from cascadec.limits import atomic_write

CERT_PREFIX = "# certificate: "
CALIBRATED_HEAD = "# Calibrated by `cascadec calibrate`"  # how an earlier output is recognised
CERT_KEYS = ("bank_hash",)  # a certificate JSON (``calibrate --json``) has this key


def write_spec(spec: dict, certificate: dict, out: Path) -> None:
    import yaml

    head = [
        CALIBRATED_HEAD + " (Learn-then-Test, fixed-sequence testing).",
        f"# Target: {certificate['target']}",
        f"# Certified on {certificate['held_out_problems']} held-out problems (chosen on "
        f"{certificate['calibration_problems']} others): loss rate <= {certificate['loss_upper_bound']:.4f} "
        f"with {100 * (1 - certificate['delta']):g}% confidence{_cost_text(certificate)}; "
        f"bank {certificate['bank_hash']}",
        *_looks_text(certificate),
        CERT_PREFIX + json.dumps(certificate, sort_keys=True),
    ]
    text = "\n".join(head) + "\n" + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    atomic_write(out, text.encode("utf-8"))  # never half a spec


def _looks_text(certificate: dict) -> list[str]:
    """How many times the held-out problems were looked at (``cascadec.sim.ledger``)."""
    looks = certificate.get("looks")
    if not looks:
        return []
    if looks["count"] <= 1:
        return [f"# Held-out problems looked at once (this calibrate; ledger {looks['ledger']})."]
    return [
        f"# Held-out problems looked at {looks['count']} times (ledger {looks['ledger']}): by Bonferroni "
        f"over the looks this certificate holds with confidence >= {100 * looks['corrected_confidence']:.4g}%, "
        f"not {100 * (1 - certificate['delta']):g}%."
    ]


def _cost_text(certificate: dict) -> str:
    bound = certificate.get("cost_ratio_upper_bound")
    return "" if bound is None else f", mean cost ratio <= {bound:.4f}"


def read_certificate(path: str | Path) -> dict | None:
    """The certificate a calibrated spec carries (None for a spec written by hand)."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(CERT_PREFIX):
            return json.loads(line[len(CERT_PREFIX) :])
    return None
