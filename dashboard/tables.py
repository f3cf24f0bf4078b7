"""How every table of the dashboard is presented: human headers with units, short ids, rounded numbers, no "None".

A page describes its table once — ``{column: Col("Latency (ms)", "ms")}`` — and :func:`show` draws it:
:func:`prepare` turns the query frame into display values (ids shortened, numbers rounded, labels flattened,
times in UTC) and :func:`column_config` tells Streamlit's grid the header, the format and the width of each column.
Missing values show as an en dash (the grid's ``placeholder``), never as ``None``.

Why the preparing is done in Python and not only with ``st.column_config``: a ``uuid.UUID`` column reaches the grid
through Arrow as 16 raw bytes, which the grid shows as ``{"0":1,"1":162,…}``; and a number rounded before it is sent
keeps the grid's sorting numeric while the formats stay simple.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pandas as pd
import streamlit as st

Kind = Literal["text", "id", "count", "ms", "number", "percent", "usd", "time", "score", "share", "flag"]

#: Shown for a missing value in any cell.
MISSING = "–"
#: How many hex digits of an id a table shows. The *last* ones: ids are time-ordered (UUID version 7), so their
#: first digits are the same for every row of the same minute, while the last ones are random.
SHORT_ID_DIGITS = 8
TIME_FORMAT = "YYYY-MM-DD HH:mm:ss"
#: Dollars to five decimals: one call on a small model costs tens of micro-dollars, which four would show as $0.
USD_DIGITS = 5
#: Bar colours of ``score`` and ``share`` columns: "auto" is green above the middle of the scale and red at or below
#: it (Streamlit's default, the theme's primary colour, is red: every bar looked like an alarm).
SCORE_COLOR = "auto"


@dataclass(frozen=True, slots=True)
class Col:
    """One column as shown: its header (with the unit), how its values look, a tooltip and, rarely, a width."""

    label: str
    kind: Kind = "text"
    help: str | None = None
    width: Literal["small", "medium", "large"] | int | None = None
    #: Kept in view while the table scrolls sideways.
    pinned: bool = False
    #: ``score`` columns: the scale (the bar is green above its middle, red at or below it).
    scale: tuple[float, float] = (0.0, 100.0)


def short_id(value: object) -> str | None:
    """``…`` and the last :data:`SHORT_ID_DIGITS` hex digits of a uuid (or of its text); ``None`` stays ``None``."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = value.hex if isinstance(value, uuid.UUID) else str(value).replace("-", "")
    return "…" + text[-SHORT_ID_DIGITS:] if len(text) > SHORT_ID_DIGITS else text


def full_id(value: object) -> str | None:
    """A uuid in its usual dashed form (a table keeps these for details, never for display)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value) if isinstance(value, uuid.UUID) else str(uuid.UUID(str(value)))


def labels_text(value: object) -> str | None:
    """``{"provider": "anthropic"}`` → ``provider=anthropic`` (alert labels, silence matchers)."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or None
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, Mapping):
        return labels_text(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    text = str(value)
    return text if text.strip() else None


def _objects(series: pd.Series, convert: Callable[[object], object]) -> pd.Series:
    """``convert`` each value, keeping ``None`` as ``None`` (``Series.map`` would turn it into NaN)."""
    return pd.Series([convert(v) for v in series], index=series.index, dtype="object")


def _rounded(series: pd.Series, digits: int) -> pd.Series:
    numbers = pd.to_numeric(series, errors="coerce").astype("float64").round(digits)
    return numbers.astype("Int64") if digits == 0 else numbers


def _times(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC")
    values = [v if isinstance(v, datetime | pd.Timestamp | str) else None for v in series]
    return pd.to_datetime(pd.Series(values, index=series.index, dtype="object"), utc=True, errors="coerce")


def prepare_column(series: pd.Series, kind: Kind) -> pd.Series:
    """The display values of one column of ``kind``."""
    if kind == "id":
        return _objects(series, short_id)
    if kind == "text":
        return _objects(series, _text)
    if kind in ("count", "ms"):
        return _rounded(series, 0)
    if kind == "number":
        return _rounded(series, 2)
    if kind == "percent":  # a 0–1 share shown as a percentage with one decimal
        return _rounded(pd.to_numeric(series, errors="coerce").astype("float64") * 100.0, 1)
    if kind == "usd":
        return _rounded(series, USD_DIGITS)
    if kind in ("score", "share"):
        return _rounded(series, 3 if kind == "share" else 1)
    if kind == "time":
        return _times(series)
    if kind == "flag":
        return _objects(series, lambda v: None if v is None or (isinstance(v, float) and pd.isna(v)) else bool(v))
    raise ValueError(f"unknown column kind {kind!r}")


def prepare(frame: pd.DataFrame, columns: Mapping[str, Col]) -> pd.DataFrame:
    """Only ``columns``, in their order, with display values; a column the frame lacks is an error naming it."""
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise KeyError(f"table columns {missing} are not in the frame (it has {list(frame.columns)})")
    return pd.DataFrame(
        {name: prepare_column(frame[name], col.kind) for name, col in columns.items()}, index=frame.index
    ).reset_index(drop=True)


def _config(col: Col) -> dict[str, Any]:
    common: dict[str, Any] = {"help": col.help, "width": col.width, "pinned": col.pinned or None}
    kind = col.kind
    if kind in ("text", "id"):
        return st.column_config.TextColumn(col.label, **common)
    if kind in ("count", "ms"):
        return st.column_config.NumberColumn(col.label, format="localized", **common)
    if kind == "number":  # rounded to 2 decimals in prepare(): 300, 37.5, 18.75, 30,000
        return st.column_config.NumberColumn(col.label, format="localized", **common)
    if kind == "percent":
        return st.column_config.NumberColumn(col.label, format="%.1f %%", **common)
    if kind == "usd":
        return st.column_config.NumberColumn(col.label, format=f"$%.{USD_DIGITS}f", **common)
    if kind == "time":
        return st.column_config.DatetimeColumn(col.label, format=TIME_FORMAT, timezone="UTC", **common)
    if kind == "score":
        low, high = col.scale
        return st.column_config.ProgressColumn(
            col.label, min_value=low, max_value=high, format="%.0f", color=SCORE_COLOR, **common
        )
    if kind == "share":
        return st.column_config.ProgressColumn(
            col.label, min_value=0, max_value=1, format="percent", color=SCORE_COLOR, **common
        )
    if kind == "flag":
        return st.column_config.CheckboxColumn(col.label, **common)
    raise ValueError(f"unknown column kind {kind!r}")


def column_config(columns: Mapping[str, Col]) -> dict[str, Any]:
    return {name: _config(col) for name, col in columns.items()}


def show(frame: pd.DataFrame, columns: Mapping[str, Col], **options: Any) -> Any:
    """Draw ``frame`` as a table of ``columns`` (``options`` go to ``st.dataframe``: ``key``, ``on_select``…)."""
    return st.dataframe(
        prepare(frame, columns),
        hide_index=True,
        column_config=column_config(columns),
        placeholder=MISSING,
        **options,
    )


#: Characters GitHub-flavoured Markdown gives a meaning to: escaped in a static table's cells (st.table renders
#: Markdown), so an alert summary with ``<`` or ``*`` shows as written.
_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>()#+-.!|~$"})


def _static_cell(value: object, kind: Kind) -> str:
    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return MISSING
    if kind == "time":
        return f"{pd.Timestamp(value).tz_convert('UTC'):%Y-%m-%d %H:%M:%S}"
    if kind in ("count", "ms"):
        return f"{int(value):,}"
    if kind in ("number", "score", "share"):
        return f"{float(value):,g}"
    if kind == "percent":
        return f"{float(value):.1f} %"
    if kind == "usd":
        return f"${float(value):.{USD_DIGITS}f}"
    if kind == "flag":
        return "yes" if value else "no"
    return str(value).translate(_MARKDOWN)


def show_static(frame: pd.DataFrame, columns: Mapping[str, Col]) -> Any:
    """Draw a few rows as a static table (``st.table``): the same headers and values as :func:`show`, without the
    interactive grid, whose script costs the page about 0.35 s to load — for the Overview's active alerts, where
    the time to draw the page is a goal and nobody sorts or scrolls five rows."""
    shown = prepare(frame, columns)
    cells = {col.label: [_static_cell(v, col.kind) for v in shown[name]] for name, col in columns.items()}
    return st.table(pd.DataFrame(cells), hide_index=True, border="horizontal")
