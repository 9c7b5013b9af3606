"""A calibrated spec carries its certificate: comment lines any YAML reader skips, one of them JSON.

The spec still compiles like any other; ``read_certificate`` gets the guarantee back (the demo
prints it beside the measured figures).
"""

from __future__ import annotations

import json
from pathlib import Path

CERT_PREFIX = "# certificate: "


def write_spec(spec: dict, certificate: dict, out: Path) -> None:
    import yaml

    head = [
        "# Calibrated by `cascadec calibrate` (Learn-then-Test, fixed-sequence testing).",
        f"# Target: {certificate['target']}",
        f"# Certified on {certificate['held_out_problems']} held-out problems (chosen on "
        f"{certificate['calibration_problems']} others): loss rate <= {certificate['loss_upper_bound']:.4f} "
        f"with {100 * (1 - certificate['delta']):g}% confidence; bank {certificate['bank_hash']}",
        CERT_PREFIX + json.dumps(certificate, sort_keys=True),
    ]
    out.write_text(
        "\n".join(head) + "\n" + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


def read_certificate(path: str | Path) -> dict | None:
    """The certificate a calibrated spec carries (None for a spec written by hand)."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(CERT_PREFIX):
            return json.loads(line[len(CERT_PREFIX) :])
    return None
