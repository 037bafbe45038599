"""How the product shows amounts to people: one function per kind, used by every page, the console,
the admin lists and the command line (the template filters ``money`` and ``duration_ms`` of
``{% load admin_ui %}`` call them).

* Latency: milliseconds under a second ("850 ms"; "0.42 ms" under one), then seconds with one
  decimal ("30.1 s") — never "30061 ms" on one page and "30.1 s" on another.
* Money: four decimals always (a run costs fractions of a cent), with the organisation's currency as
  its ISO 4217 code first: "EUR 0.0530", "EUR 1,204.5000". No conversion: costs are in the currency
  the organisation's providers are priced in, which is the currency it chose
  (``Organization.currency``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

#: The currencies an organisation may choose (ISO 4217 code, name).
CURRENCIES = [
    ("EUR", "Euro (EUR)"),
    ("USD", "US dollar (USD)"),
    ("GBP", "Pound sterling (GBP)"),
    ("CHF", "Swiss franc (CHF)"),
    ("SEK", "Swedish krona (SEK)"),
    ("NOK", "Norwegian krone (NOK)"),
    ("DKK", "Danish krone (DKK)"),
    ("PLN", "Polish złoty (PLN)"),
    ("CZK", "Czech koruna (CZK)"),
    ("HUF", "Hungarian forint (HUF)"),
    ("RON", "Romanian leu (RON)"),
    ("CAD", "Canadian dollar (CAD)"),
    ("AUD", "Australian dollar (AUD)"),
    ("JPY", "Japanese yen (JPY)"),
]
DEFAULT_CURRENCY = "EUR"
MONEY_DECIMALS = 4
QUANTUM = Decimal(1).scaleb(-MONEY_DECIMALS)
NOTHING = "—"


def format_duration_ms(value) -> str:
    """Milliseconds for people: 0 → "0 ms", 0.25 → "0.25 ms", 850 → "850 ms", 999.7 → "1.0 s", 30061 → "30.1 s"."""
    if value is None or value == "":
        return NOTHING
    try:
        ms = float(value)
    except (TypeError, ValueError):
        return NOTHING
    if ms == 0:
        return "0 ms"
    if ms < 1:
        return f"{ms:.2f} ms"
    if round(ms) < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:,.1f} s"


def format_money(value, currency: str | None = None) -> str:
    """An amount with ``MONEY_DECIMALS`` decimals and ``currency`` (an ISO code) first:
    ``format_money("0.053", "EUR")`` → "EUR 0.0530"; without a currency, the number alone."""
    if value is None or value == "":
        return NOTHING
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return NOTHING
    if not amount.is_finite():
        return NOTHING
    # Half a ten-thousandth rounds up, as people round money (Python's default is to the even digit).
    text = f"{amount.quantize(QUANTUM, rounding=ROUND_HALF_UP):,.{MONEY_DECIMALS}f}"
    return f"{currency} {text}" if currency else text
