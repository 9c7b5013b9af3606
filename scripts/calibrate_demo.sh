#!/usr/bin/env bash
# Regenerate specs/demo.yaml: record a zoo bank on a draw separate from the demo's problems
# (seed 11; the demo draws with seed 20261125), then calibrate the search space on it.
set -euo pipefail
BANK=${BANK:-/tmp/cascadec-zoo-bank-s11}
PY=${PY:-.venv/bin/python}
$PY -m cascadec zoo sample --n 2000 --seed 11 --out "$BANK.jsonl"
[ -f "$BANK/samples.parquet" ] || $PY -m cascadec bank build --models zoo --data "$BANK.jsonl" --k 8 \
  --temperatures 0.7 --max-tokens 48 --prompt raw --out "$BANK"
$PY -m cascadec calibrate specs/search/zoo.yaml --bank "$BANK" --data "$BANK.jsonl" \
  --max-loss 1.0 --confidence 0.95 --name demo_cascade --out specs/demo.yaml --overwrite
