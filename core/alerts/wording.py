"""How an alert writes a value beside its bound — ``80.0 % < 95 %`` while firing, ``back to 96.1 % (≥ 95 %)`` when
resolved — rounded so that the written comparison is as true as the measured one.

Rounding to the nearest digit can make a true comparison read false (94.96 % is below 95 %, but "95.0 % < 95 %"
is not), so a value that close to its bound is written with more decimals ("94.96 % < 95 %").
:mod:`pulsegate.core.alerts.claims` reads these phrases back and checks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

OPERATORS = ("<", ">", "≤", "≥")
MAX_EXTRA_DECIMALS = 4


@dataclass(frozen=True, slots=True)
class Quantity:
    """How values of one kind are written: ``80.0 %``, ``45000 ms``, ``$12.00``, ``3``, ``5.0×``."""

    decimals: int = 0
    unit: str = ""  # written after the number: " %", " ms", " s", "×"
    currency: str = ""  # written before it: "$"

    def text(self, value: float, decimals: int | None = None) -> str:
        places = self.decimals if decimals is None else decimals
        return f"{self.currency}{value:.{places}f}{self.unit}"


PERCENT = Quantity(1, " %")
MILLISECONDS = Quantity(0, " ms")
SECONDS = Quantity(0, " s")
COUNT = Quantity(0)
USD = Quantity(2, currency="$")
TIMES = Quantity(1, "×")
WHOLE_PERCENT = Quantity(0, " %")


def holds(value: float, operator: str, bound: float) -> bool:
    """``value operator bound`` for one of :data:`OPERATORS`."""
    if operator == "<":
        return value < bound
    if operator == ">":
        return value > bound
    if operator == "≤":
        return value <= bound
    if operator == "≥":
        return value >= bound
    raise ValueError(f"unknown comparison {operator!r}")


def places(number: float) -> int:
    """Decimals needed to write ``number`` exactly (at most 4): 95 → 0, 14.4 → 1, 99.95 → 2."""
    for decimals in range(MAX_EXTRA_DECIMALS + 1):
        if abs(round(number, decimals) - number) < 1e-9:
            return decimals
    return MAX_EXTRA_DECIMALS


def _written(text: str, quantity: Quantity) -> float:
    """The number a written quantity states (what a reader, or :mod:`pulsegate.core.alerts.claims`, takes it for)."""
    core = text.removeprefix(quantity.currency).removesuffix(quantity.unit)
    return float(core.replace(",", ""))


def comparison(value: float, operator: str, bound: float, quantity: Quantity) -> tuple[str, str]:
    """(value, bound) written so that ``value operator bound`` reads true whenever it is true.

    The value is rounded to the quantity's decimals (at least the bound's); where that would read false (94.96 %
    is "95.0 %", not below 95 %) more decimals are shown until it reads as measured. A comparison that is false
    is written as measured."""
    decimals = max(quantity.decimals, places(bound))
    limit = quantity.text(bound, places(bound))
    if not holds(value, operator, bound):
        return quantity.text(value, decimals), limit
    most = decimals + MAX_EXTRA_DECIMALS
    for shown_decimals in range(decimals, most + 1):
        shown = quantity.text(value, shown_decimals)
        if holds(_written(shown, quantity), operator, bound):
            return shown, limit
    # a hair from the bound: round toward its side (down for < and ≥, up for > and ≤)
    scale = 10**most
    toward = math.floor(value * scale) if operator in ("<", "≥") else math.ceil(value * scale)
    return quantity.text(toward / scale, most), limit


def compared(value: float, operator: str, bound: float, quantity: Quantity) -> str:
    """``80.0 % < 95 %``: the firing form."""
    shown, limit = comparison(value, operator, bound, quantity)
    return f"{shown} {operator} {limit}"


def back_to(value: float, operator: str, bound: float, quantity: Quantity) -> str:
    """``back to 96.1 % (≥ 95 %)``: the resolved form — the value that resolved it and the bound it is back past."""
    shown, limit = comparison(value, operator, bound, quantity)
    return f"back to {shown} ({operator} {limit})"


def bound_text(operator: str, bound: float, quantity: Quantity) -> str:
    """``≥ 97 %``: a bound alone, as still-firing texts name the resolve threshold."""
    return f"{operator} {quantity.text(bound, places(bound))}"
