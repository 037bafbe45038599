"""Audit sample size for attribute sampling (tests of controls).

The sample size is the smallest n for which, if the true deviation rate were the tolerable rate,
finding no more than the expected number of deviations would have probability at most
1 − confidence: P(X ≤ k) ≤ 1 − confidence, with X binomial(n, tolerable rate) — the basis of the
AICPA sample-size tables — or Poisson(n × tolerable rate), a slightly more conservative approximation.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, Decimal

from tools.builtins._common import DECIMAL_SCHEMA, ToolError, fmt, to_decimal

SLUG = "audit-sample-size"
NAME = "Audit sample-size calculator"
DESCRIPTION = (
    "Attribute-sampling sample size for a test of controls, from the confidence level (e.g. 95), the "
    "tolerable deviation rate in percent (e.g. 5) and the expected deviations — a count or an "
    "expected deviation rate in percent. Binomial (default) or Poisson method."
)
MAX_SAMPLE = 5000
# Bounds the search: beyond this many expected deviations attribute sampling is not a sensible test.
MAX_DEVIATIONS = 250
INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "confidence": {**DECIMAL_SCHEMA, "description": "Confidence level in percent, e.g. 90, 95 or 99."},
        "tolerable_deviation_rate": {**DECIMAL_SCHEMA, "description": "Tolerable deviation rate, percent."},
        "expected_deviations": {"type": "integer", "minimum": 0, "maximum": 100, "default": 0},
        "expected_deviation_rate": {
            **DECIMAL_SCHEMA,
            "description": "Expected deviation rate in percent; instead of expected_deviations.",
        },
        "population": {"type": "integer", "minimum": 1, "description": "Optional population size (caps n)."},
        "method": {"type": "string", "enum": ["binomial", "poisson"], "default": "binomial"},
    },
    "required": ["confidence", "tolerable_deviation_rate"],
    "additionalProperties": False,
}


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X ≤ k) for X ~ binomial(n, p): terms by recurrence in log space (no underflow for large n)."""
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    log_ratio = math.log(p) - math.log1p(-p)
    log_term = n * math.log1p(-p)
    total = math.exp(log_term)
    for i in range(1, min(k, n) + 1):
        log_term += math.log((n - i + 1) / i) + log_ratio
        total += math.exp(log_term)
    return min(total, 1.0)


def poisson_cdf(k: int, mean: float) -> float:
    """P(X ≤ k) for X ~ Poisson(mean)."""
    term = math.exp(-mean)
    total = term
    for i in range(1, k + 1):
        term *= mean / i
        total += term
    return min(total, 1.0)


def run(arguments: dict) -> dict:
    confidence = to_decimal(arguments["confidence"], "confidence")
    tolerable = to_decimal(arguments["tolerable_deviation_rate"], "tolerable_deviation_rate")
    if not Decimal(50) <= confidence < Decimal(100):
        raise ToolError("confidence: between 50 and 100 percent (exclusive), e.g. 95.")
    if not Decimal(0) < tolerable < Decimal(100):
        raise ToolError("tolerable_deviation_rate: between 0 and 100 percent (exclusive), e.g. 5.")
    if "expected_deviations" in arguments and "expected_deviation_rate" in arguments:
        raise ToolError("Give expected_deviations or expected_deviation_rate, not both.")
    method = arguments.get("method", "binomial")
    risk = float((Decimal(100) - confidence) / 100)
    p = float(tolerable / 100)
    expected_rate = None
    if "expected_deviation_rate" in arguments:
        expected_rate = to_decimal(arguments["expected_deviation_rate"], "expected_deviation_rate")
        if not Decimal(0) <= expected_rate < tolerable:
            raise ToolError("expected_deviation_rate: must be at least 0 and below the tolerable rate.")
    fixed_k = int(arguments.get("expected_deviations", 0))

    def deviations_for(n: int) -> int:
        if expected_rate is None:
            return fixed_k
        # Expected deviations in a sample of n, rounded up (conservative).
        return int((Decimal(n) * expected_rate / 100).to_integral_value(rounding=ROUND_CEILING))

    def tail(n: int, k: int) -> float:
        return binomial_cdf(k, n, p) if method == "binomial" else poisson_cdf(k, n * p)

    n = max(1, deviations_for(1) + 1)
    while True:
        k = deviations_for(n)
        if k < n and tail(n, k) <= risk:
            break
        n += 1
        if n > MAX_SAMPLE or k > MAX_DEVIATIONS:
            raise ToolError(
                f"No sample of at most {MAX_SAMPLE} items reaches this confidence: "
                "raise the tolerable rate or lower the expected deviations."
            )
    result = {
        "method": method,
        "confidence": fmt(confidence),
        "tolerable_deviation_rate": fmt(tolerable),
        "expected_deviations": k,
        "sample_size": n,
        "achieved_risk": f"{tail(n, k):.4f}",
    }
    if expected_rate is not None:
        result["expected_deviation_rate"] = fmt(expected_rate)
    population = arguments.get("population")
    if population is not None and n > population:
        result["sample_size"] = population
        result["note"] = "The computed sample exceeds the population: test every item."
    return result
