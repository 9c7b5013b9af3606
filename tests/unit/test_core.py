"""The semantic core (cascadec.core): kinds, the printer, tier selection, worst-case counts, and
the one registry resolver every command shares."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.core.kinds import CASCADES, KINDS, Kind
from cascadec.core.printer import format_temperature, marker_text, vote_marker
from cascadec.core.selection import select_tiers, start_tier, worst_case_samples
from cascadec.errors import exit_code
from cascadec.marker import parse_marker
from cascadec.plan import Exploration, RetryRule
from cascadec.registry import resolve_registry
from cascadec.runtime.testing import tier


def test_kinds_are_strings_and_one_list():
    assert [str(k) for k in KINDS] == ["plain", "mv", "cascade", "entropy_cascade"]
    assert Kind("cascade") == "cascade" and Kind.ENTROPY_CASCADE.escalates and not Kind.MV.escalates
    assert CASCADES == {Kind.CASCADE, Kind.ENTROPY_CASCADE}


@pytest.mark.parametrize(
    "kind, tiers, text",
    [
        ("plain", [("7B", 1, 0.0)], "7B"),
        ("mv", [("1.5B", 8, 0.70)], "mv_1.5B_k8_t0.7"),
        ("cascade", [("1.5B", 4, 0.7), ("72B", 1, 0)], "mv_cascade_1.5B_k4_t0.7_72B_k1_t0.0"),
        ("entropy_cascade", [("7B", 5, 1)], "mv_entropy_cascade_7B_k5_t1.0"),
    ],
)
def test_printer_is_what_the_parser_reads_back(kind, tiers, text):
    assert marker_text(kind, tiers) == text
    assert str(parse_marker(text)) == text


def test_printer_refuses_shapes_no_marker_has():
    with pytest.raises(ValueError):
        marker_text("mv", [("7B", 4, 0.7), ("72B", 1, 0.0)])
    with pytest.raises(ValueError):
        marker_text("cascade", [])
    assert vote_marker("0.034M", 4, 0.7) == "mv_0.034M_k4_t0.7"
    assert format_temperature(1e-05) == "0.00001"


def test_cost_aware_selection():
    tiers = ("small", "mid", "large")
    assert select_tiers(tiers, 4, None) == tiers
    assert select_tiers(tiers, 4, 5) == tiers
    assert select_tiers(tiers, 5, 5) == ("mid", "large")
    assert select_tiers(("only",), 9, 5) == ("only",)  # a single tier is never skipped
    assert start_tier(8, 8, 2) == 1 and start_tier(7, 8, 2) == 0
    # a difficulty's start tier moves the start further; the last tier always runs
    assert select_tiers(tiers, 4, None, 2) == ("large",)
    assert select_tiers(tiers, 5, 5, 0) == ("mid", "large") and select_tiers(tiers, 5, 5, 2) == ("large",)
    assert start_tier(1, None, 3, 7) == 2 and start_tier(1, None, 3, 1) == 1


def test_worst_case_samples():
    plain = tier("m", 4)
    assert worst_case_samples(plain) == 4 and worst_case_samples(plain, k=6) == 6
    retried = tier("m", 4, retry=RetryRule(max=2, when="true", extra_k=3))
    assert worst_case_samples(retried) == 10
    hot = tier("m", 4, explore=Exploration(when="true", action="raise_temperature"))
    assert worst_case_samples(hot) == 8  # extra_k 0 means "k more"
    skip = tier("m", 4, explore=Exploration(when="true", action="skip_to_top", extra_k=3))
    assert worst_case_samples(skip) == 4


def test_one_registry_resolver_for_every_command(tmp_path):
    assert resolve_registry("zoo").get("0.034M") is not None
    assert resolve_registry(None).get("7B") is not None
    marker_file = tmp_path / "markers.txt"
    marker_file.write_text("mv_0.034M_k4_t0.7\n")
    runner = CliRunner()
    linted = runner.invoke(app, ["lint", str(marker_file), "--models", "zoo"])
    compiled = runner.invoke(app, ["compile", "--marker", "mv_0.034M_k4_t0.7", "--models", "zoo"])
    assert linted.exit_code == 0, linted.output
    assert compiled.exit_code == 0, compiled.output


def _cli(*args) -> tuple[int, str]:
    """A command as ``cascadec.cli.main`` runs it: an escaping error exits by ``errors.exit_code``."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    exc = result.exception
    status = result.exit_code if exc is None or isinstance(exc, SystemExit) else exit_code(exc)
    return status, result.output + ("" if exc is None else str(exc))


def test_registry_errors_exit_alike_in_every_command(tmp_path):
    """A --models registry that is not there is usage/I/O (2), a malformed one bad input (1), everywhere."""
    markers = tmp_path / "markers.txt"
    markers.write_text("mv_7B_k4_t0.7\n")
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"id": "p0", "problem": "1+1=", "answer": "2"}) + "\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [{id: x}]\n")  # no params: E300
    commands = [
        ("lint", markers),
        ("compile", "--marker", "mv_7B_k4_t0.7"),
        ("explain", "--marker", "mv_7B_k4_t0.7"),
        ("run", "--marker", "mv_7B_k4_t0.7", "--data", data, "--dry-run"),
    ]
    for command in commands:
        for registry, code, says in (
            ("no-such-registry", 2, "cannot find model registry 'no-such-registry'"),
            (tmp_path / "missing.yaml", 2, "missing.yaml"),
            (bad, 1, "E300"),
        ):
            status, out = _cli(*command, "--models", registry)
            assert status == code, (command, registry, out)
            assert says in out and "Traceback" not in out, (command, out)
    done = subprocess.run(  # and the real entry point agrees
        [sys.executable, "-m", "cascadec", "lint", str(markers), "--models", "no-such-registry"],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
