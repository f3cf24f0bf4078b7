"""The Overview's figure: an incident lane over eight panels, all on one shared time axis.

One Plotly figure with subplots, not eight charts: the browser lays out one plot instead of eight (measured: the
Overview's load time is dominated by Plotly's work in the page), and zooming or panning one panel moves them all,
so an incident lines up across success rate, latency, queues and errors.

Incidents (:mod:`pulsegate.dashboard.incidents`) are drawn in one go whatever their number: the lane's bars are a single
trace, the panels' shading one list of shapes assigned once — never a shape or annotation added per alert, which
Plotly validates against all earlier ones (quadratic: 60 alert lines took 94 s). Each column of panels has its
lane right above it on the same time axis, and hovering draws a dotted line across the panels at that moment.

Traces and the figure are built without Plotly's per-property validation, which was most of the build time (the
tests validate whole figures), and the subplot grid is made once per lane count.
"""

from __future__ import annotations

import copy
import functools

import pandas as pd
import plotly.graph_objects as go

from pulsegate.core.errors import ErrorClass
from pulsegate.dashboard.charts import COLORS, ERROR_COLORS
from pulsegate.dashboard.incidents import Incidents

PANELS: tuple[str, ...] = (
    "Success rate",
    "Latency (ms)",
    "Tokens",
    "Cost (USD)",
    "Queue depth per provider",
    "Errors by class",
    "Calls: source, priority, fallbacks, cancelled",
    "Oldest queued wait (s)",
)
LANE_TITLE = "Incidents"
#: One lane over each column of panels.
LANES = 2
PANEL_HEIGHT = 230
#: Between rows of panels: room for a title of up to three lines (the name, then its series in two lines).
GAP_PX = 58
LANE_ROW_PX = 20
MARGIN = {"l": 50, "r": 10, "t": 30, "b": 30}
#: Characters per title line: a panel is about half the page wide (≥ ~330 px for a 1,000 px wide window).
TITLE_LINE_CHARS = 52
MAX_KEY_LINES = 2
#: Panels whose series are named even when there is only one (which error class, which provider).
KEYED = frozenset({"Queue depth per provider", "Errors by class", "Oldest queued wait (s)"})
#: What an empty panel says instead of drawing a meaningless axis.
NO_DATA = {
    "Success rate": "no calls in this range",
    "Latency (ms)": "no calls in this range",
    "Errors by class": "no errors in this range",
    "Queue depth per provider": "no live instance reported in this range",
    "Oldest queued wait (s)": "no live instance reported in this range",
}
#: Series with fewer points than this get markers too (a lone minute of traffic between empty steps stays
#: visible); denser ones are plain lines — thousands of SVG markers would slow the page down for nothing.
SPARSE_POINTS = 60
#: One colour per error class, fixed by the class (not by its rank), so a class keeps its colour across refreshes.
CLASS_COLORS = (
    *ERROR_COLORS,
    "#ff9da6", "#79706e", "#d67195", "#8cd17d", "#b6992d", "#499894", "#86bcb6", "#e15759", "#f1ce63", "#a0cbe8",
    "#fabfd2",
)  # fmt: skip
LANE_COLORS = {"firing": COLORS["alert"], "pending": "#f2a541", "breaker": "#7a0b2e"}
SHADE = "rgba(224, 30, 90, 0.08)"
#: Lane names sit over the start of the left lane: a nearly opaque white box keeps them readable over a bar that
#: begins there (a text halo alone left the name smeared over dark breaker bars; the bar still shows through).
LABEL_BOX = "rgba(255, 255, 255, 0.82)"
PRIORITY_COLORS = {"user_facing": "#54a24b", "admin": "#b279a2", "background": "#bab0ac"}
#: Hovering anywhere draws a dotted line across every panel at that moment.
SPIKES = {"showspikes": True, "spikemode": "across", "spikesnap": "cursor", "spikethickness": 1, "spikedash": "dot"}


def _points(values: pd.Series) -> dict:
    if int(values.notna().sum()) < SPARSE_POINTS:
        return {"mode": "lines+markers", "marker": {"size": 4}}
    return {"mode": "lines"}


def _line(x: pd.Series, y: pd.Series, name: str, color: str | None, **extra: object) -> go.Scatter:
    """A series, built without Plotly's per-property validation (about 100× faster for a 1,440-point series; the
    tests validate whole figures instead)."""
    line = {"color": color, **extra.pop("line", {})}  # type: ignore[dict-item]
    return go.Scatter(x=x, y=y, name=name, line=line, **extra, _validate=False)


def _success(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    values = traffic["success_rate"]
    return [_line(traffic["bucket"], values, "success rate", COLORS["ok"], **_points(values))]


def _latency(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    return [
        _line(traffic["bucket"], traffic[column], name, COLORS[name], **_points(traffic[column]))
        for column, name in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"))
    ]


def _tokens(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    return [
        _line(traffic["bucket"], traffic[column], name, color, stackgroup="tokens")
        for column, name, color in (("input_tokens", "input", "#4c78a8"), ("output_tokens", "output", "#72b7b2"))
    ]


def _cost(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    return [_line(traffic["bucket"], traffic["cost_usd"], "cost", "#72b7b2", fill="tozeroy")]


def _queues(queues: pd.DataFrame, column: str, scale: float = 1.0) -> list[go.BaseTraceType]:
    """One step line per provider. A step in which live instances reported an empty queue has no oldest wait (the
    store holds none): it is drawn as 0 s — nothing was waiting — not left out, which would make a quiet queue look
    like no instance reporting at all."""
    return [
        _line(
            rows["bucket"],
            rows[column].fillna(0.0).where(rows["instances"] > 0) * scale,
            str(provider),
            COLORS.get(str(provider)),
            line={"shape": "hv"},
        )
        for provider, rows in queues.groupby("provider", sort=True)
    ]


def _errors(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    """Stacked areas (one SVG path per class, not one bar per step), stacked in a fixed class order; only
    classes seen in the range get a trace. Cancelled calls are not errors: they are a series of the calls panel."""
    return [
        _line(
            traffic["bucket"],
            traffic[f"err_{error_class.value}"],
            error_class.value,
            CLASS_COLORS[index % len(CLASS_COLORS)],
            stackgroup="errors",
        )
        for index, error_class in enumerate(ErrorClass)
        if error_class is not ErrorClass.CANCELLED
        and f"err_{error_class.value}" in traffic
        and traffic[f"err_{error_class.value}"].sum() > 0
    ]


def _sources(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    """Live and probe calls stacked; each priority class (user-facing, admin, background) as a dotted line over
    them, fallbacks and cancelled calls (the caller went away: neither a success nor an error) as lines."""
    x = traffic["bucket"]
    priorities = [
        _line(x, traffic[f"calls_{name}"], name.replace("_", "-"), color, line={"dash": "dot"})
        for name, color in PRIORITY_COLORS.items()
        if f"calls_{name}" in traffic
    ]
    return [
        _line(x, traffic["live_calls"], "live", COLORS["live"], stackgroup="calls"),
        _line(x, traffic["probe_calls"], "probe", COLORS["probe"], stackgroup="calls"),
        *priorities,
        _line(x, traffic["fallbacks"], "fallbacks", COLORS["fail"]),
        _line(x, traffic["cancelled"], "cancelled", COLORS["cancelled"], line={"dash": "dash"}),
    ]


def _values(trace: go.BaseTraceType) -> pd.Series:
    """A trace's y values as numbers (missing ones NaN)."""
    return pd.to_numeric(pd.Series(trace.y if trace.y is not None else [], dtype="float64"), errors="coerce")


def _total(trace: go.BaseTraceType) -> float:
    return float(_values(trace).sum())


def panel_title(name: str, traces: list[go.BaseTraceType]) -> str:
    """A panel title that is also its legend: the name, then each series in its colour on at most
    :data:`MAX_KEY_LINES` lines of :data:`TITLE_LINE_CHARS` characters (largest series first); series that do not
    fit are counted as "+N more" (their values still show on hover)."""
    if len(traces) < 2 and name not in KEYED:
        return f"<b>{name}</b>"
    keys = sorted(traces, key=_total, reverse=True) if name == "Errors by class" else traces
    lines: list[list[tuple[str, str]]] = [[]]
    shown = 0
    for trace in keys:
        text = f"■ {trace.name}"
        width = sum(len(t) + 2 for t, _ in lines[-1]) + len(text)
        if lines[-1] and width > TITLE_LINE_CHARS - len("  +99 more"):
            if len(lines) == MAX_KEY_LINES:
                break
            lines.append([])
        color = getattr(getattr(trace, "line", None), "color", None) or "#888"
        lines[-1].append((text, color))
        shown += 1
    if shown < len(keys):
        lines[-1].append((f"+{len(keys) - shown} more", "#888"))
    rendered = ["  ".join(f'<span style="color:{c}">{t}</span>' for t, c in line) for line in lines if line]
    return "<br>".join([f"<b>{name}</b>", *rendered])


def _y_range(traces: list[go.BaseTraceType]) -> tuple[dict, bool]:
    """A count axis starts at 0 (never a negative count, never 9.97–9.99 s for a nearly constant series); a
    panel with nothing to draw, or only zeros, gets 0…1. Also whether the panel has no data at all."""
    highest = [_values(t).max() for t in traces if _values(t).notna().any()]
    if not highest:
        return {"range": [0, 1], "autorange": False}, True
    if max(highest) <= 0:
        return {"range": [0, 1], "autorange": False}, False
    return {"rangemode": "tozero", "autorange": True}, False


def _lane_height(incidents: Incidents) -> int:
    return LANE_ROW_PX * max(1, len(incidents.lanes)) + 6


@functools.lru_cache(maxsize=32)
def _grid_template(lane_px: int, panel_rows: int) -> dict:
    """The subplot grid as a plain layout dict (titles numbered as placeholders): a lane over each column, then
    the panels. ``make_subplots`` is slow (~0.1–0.3 s), and the grid only changes with the number of lanes."""
    from plotly.subplots import make_subplots

    area = lane_px + panel_rows * (PANEL_HEIGHT + GAP_PX)
    grid = make_subplots(
        rows=panel_rows + 1,
        cols=2,
        subplot_titles=[str(i) for i in range(2 * (panel_rows + 1))],
        row_heights=[lane_px, *([PANEL_HEIGHT] * panel_rows)],
        vertical_spacing=GAP_PX / area,
        horizontal_spacing=0.07,
    )
    layout = grid.layout.to_plotly_json()
    layout["height"] = area + MARGIN["t"] + MARGIN["b"]
    return layout


def _grid(titles: list[str], lane_px: int, panel_rows: int) -> dict:
    """A fresh copy of the grid with its titles (an empty title is left out)."""
    layout = copy.deepcopy(_grid_template(lane_px, panel_rows))
    layout["annotations"] = [
        {**title, "text": titles[int(title["text"])]} for title in layout["annotations"] if titles[int(title["text"])]
    ]
    return layout


def overview(traffic: pd.DataFrame, queues: pd.DataFrame, incidents: Incidents | None = None) -> go.Figure:
    """The incident lane over each column (axes ``x``/``y`` and ``x2``/``y2``: a lane spanning both columns
    would not line up with either), then :data:`PANELS` two per row (axes ``x3``/``y3`` … ``x10``/``y10``); every
    x axis shows the same time range, the incidents' range when they have one."""
    incidents = incidents or Incidents()
    panels = [
        _success(traffic),
        _latency(traffic),
        _tokens(traffic),
        _cost(traffic),
        _queues(queues, "queue_depth"),
        _errors(traffic),
        _sources(traffic),
        _queues(queues, "oldest_wait_ms", 0.001),
    ]
    panel_rows = (len(PANELS) + 1) // 2
    titles = [
        f"<b>{LANE_TITLE}</b>   {incidents.note}",
        "",
        *(panel_title(name, traces) for name, traces in zip(PANELS, panels, strict=True)),
    ]
    layout = _grid(titles, _lane_height(incidents), panel_rows)
    data: list[go.BaseTraceType] = []
    notes: list[dict] = []
    for index, traces in enumerate(panels):
        axis = index + LANES + 1
        for trace in traces:
            trace.update(xaxis=f"x{axis}", yaxis=f"y{axis}")
        data.extend(traces)
        y_axis, empty = _y_range(traces)
        layout[f"yaxis{axis}"].update(y_axis)
        if empty:
            notes.append(_note(NO_DATA.get(PANELS[index], "no data in this range"), axis))
    time_range = {}
    if incidents.start is not None:  # exactly the range: the lane's bars would pad it otherwise
        time_range = {"range": [incidents.start, incidents.end], "autorange": False}
    last = len(PANELS) + LANES
    for axis in range(1, last + 1):
        name = "xaxis" if axis == 1 else f"xaxis{axis}"
        layout[name].update(SPIKES | time_range, type="date", showticklabels=axis > last - 2)  # under the last row
        if axis > 1:
            layout[name]["matches"] = "x"
    layout[f"yaxis{LANES + 1}"]["tickformat"] = ".0%"
    domains = [layout[name]["domain"] for name in layout if name.startswith("xaxis")]
    for title in layout["annotations"]:  # the subplot titles: left-aligned over their panel or lane
        title.update(x=_left_of(domains, title["x"]), xanchor="left", align="left", font={"size": 12})
    layout.update(margin=MARGIN, showlegend=False, hovermode="x unified", uirevision="keep")  # keep zoom on refresh
    lane, lane_layout = incident_lane(incidents, panel_axes=range(LANES + 1, last + 1))
    for axis in range(1, LANES + 1):
        layout["yaxis" if axis == 1 else f"yaxis{axis}"].update(lane_layout["yaxis"])
    layout["annotations"] += lane_layout["annotations"] + notes
    if lane_layout["shapes"]:
        layout["shapes"] = lane_layout["shapes"]
    return go.Figure(data=[*lane, *data], layout=layout, _validate=False)


def _left_of(domains: list[list[float]], x: float) -> float:
    """The left edge of the column the title is centred over (make_subplots centres titles)."""
    return next(d for d in domains if d[0] <= x <= d[1])[0]


def _note(text: str, axis: int) -> dict:
    """A grey line of text in the middle of panel ``axis``."""
    where = {"xref": f"x{axis} domain", "yref": f"y{axis} domain", "x": 0.5, "y": 0.5}
    return {"text": text, **where, "showarrow": False, "font": {"color": "#888", "size": 12}}


def incident_lane(incidents: Incidents, *, panel_axes: range) -> tuple[list[go.Bar], dict]:
    """Each lane's bars as one trace (hover: what, how many, when), the lanes' y axis and names, and the
    panels' shading as one list of shapes: everything set once, so the cost does not grow with what is drawn."""
    bars = incidents.bars
    traces = [
        go.Bar(
            orientation="h",
            base=[b.start for b in bars],
            x=[(b.end - b.start) / pd.Timedelta(milliseconds=1) for b in bars],
            y=[b.lane for b in bars],
            width=0.7,
            marker={"color": [LANE_COLORS[b.kind] for b in bars], "line": {"width": 0}},
            customdata=[b.hover() for b in bars],
            hovertemplate="%{customdata}<extra></extra>",
            name="incidents",
            _validate=False,
            xaxis="x" if axis == 1 else f"x{axis}",
            yaxis="y" if axis == 1 else f"y{axis}",
        )
        for axis in range(1, LANES + 1)
        if bars
    ]
    lanes = list(incidents.lanes)
    y_axis = {
        "type": "category",
        "categoryorder": "array",
        "categoryarray": lanes[::-1],  # first lane on top
        "range": [-0.5, max(1, len(lanes)) - 0.5],
        "showticklabels": False,
        "showgrid": False,
        "zeroline": False,
        "fixedrange": True,
    }
    labels = [  # in the left lane only (the right one's rows are level with it): each annotation costs layout time
        {
            "text": lane,
            "xref": "x domain",
            "yref": "y",
            "x": 0,
            "y": lane,
            "xanchor": "left",
            "showarrow": False,
            "font": {"size": 10},
            "bgcolor": LABEL_BOX,
            "borderpad": 1,
        }
        for lane in lanes
    ]
    shapes = [
        {
            "type": "rect",
            "xref": f"x{axis}",
            "yref": f"y{axis} domain",
            "x0": start,
            "x1": end,
            "y0": 0,
            "y1": 1,
            "fillcolor": SHADE,
            "line": {"width": 0},
            "layer": "below",
        }
        for start, end in incidents.shades
        for axis in panel_axes
    ]
    return traces, {"yaxis": y_axis, "annotations": labels, "shapes": shapes}
