"""Quality floor on the labelled set kept for the benchmark (``bench/data/guardrails_labelled.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path

from guardrails.checks import build_check

DATA = Path(__file__).resolve().parents[2] / "bench" / "data" / "guardrails_labelled.jsonl"


def test_recall_and_precision_stay_above_the_targets():
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 200
    injection = build_check("prompt_injection", {})
    pii = build_check("pii", {})
    stats = {"injection": [0, 0, 0], "pii": [0, 0, 0]}  # tp, fp, fn
    for row in rows:
        outcomes = {
            "injection": (row["injection"], injection.run(row["text"], stage="input", context={}).triggered),
            "pii": (bool(row["pii"]), bool(pii.find(row["text"]))),
        }
        for kind, (expected, fired) in outcomes.items():
            stats[kind][0] += expected and fired
            stats[kind][1] += fired and not expected
            stats[kind][2] += expected and not fired
    for kind, (tp, fp, fn) in stats.items():
        assert tp / (tp + fn) >= 0.95, (kind, stats)
        assert tp / (tp + fp) >= 0.98, (kind, stats)
