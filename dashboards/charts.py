"""Altair charts for the dashboards. Every chart has a title and axis titles with units.

Functions take polars frames from ``dashboards.data`` and return Altair charts;
they never read files, so they are cheap to test.
"""
from __future__ import annotations

from typing import Sequence

import altair as alt
import polars as pl

ROLE_COLOURS = alt.Scale(domain=["faithful", "traitor", "hidden"], range=["#1f77b4", "#d62728", "#9e9e9e"])


def _frame(df: pl.DataFrame) -> pl.DataFrame:
    # Altair serialises via narwhals; dates/objects are not needed here, so plain frames suffice.
    return df


def line(df: pl.DataFrame, x: str, y: str, title: str, x_title: str, y_title: str,
         color: str | None = None, color_title: str | None = None) -> alt.Chart:
    """Line over ticks (or rounds); ``color`` splits into one line per category."""
    # ticks and rounds are whole numbers: no 1.5 on the axis
    axis = alt.Axis(format="d", tickMinStep=1) if x == "tick" else alt.Axis()
    enc = {"x": alt.X(f"{x}:Q", title=x_title, axis=axis), "y": alt.Y(f"{y}:Q", title=y_title),
           "tooltip": [x, y] + ([color] if color else [])}
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=color_title or color)
    return alt.Chart(_frame(df), title=title).mark_line(point=True).encode(**enc)


def bars(df: pl.DataFrame, category: str, value: str, title: str, category_title: str,
         value_title: str, horizontal: bool = True, order: Sequence[str] | None = None) -> alt.Chart:
    """Bars by category, biggest first, or in ``order`` (deciles stay in decile order)."""
    sort = list(order) if order is not None else ("-x" if horizontal else "-y")
    cat = alt.Y(f"{category}:N", title=category_title, sort=sort) if horizontal else \
        alt.X(f"{category}:N", title=category_title, sort=sort)
    val = alt.X(f"{value}:Q", title=value_title) if horizontal else alt.Y(f"{value}:Q", title=value_title)
    enc = {"y": cat, "x": val} if horizontal else {"x": cat, "y": val}
    return alt.Chart(_frame(df), title=title).mark_bar().encode(**enc, tooltip=[category, value])


def spend_lines(spend: pl.DataFrame, title: str = "Cumulative spend and budget remaining",
                unit: str = "USD") -> alt.Chart:
    """Cumulative USD and budget remaining (USD) over ticks, one line each."""
    cols = ["cumulative_usd"] + (["remaining_usd"] if spend["remaining_usd"].drop_nulls().len() else [])
    long = spend.select("tick", *cols).unpivot(index="tick", variable_name="series", value_name="usd")
    return line(long, "tick", "usd", title, "tick (engine step)", unit, color="series", color_title="series")


def tokens_chart(tokens: pl.DataFrame, title: str = "Tokens per tick: input (cached, not cached) and output") -> alt.Chart:
    """Stacked bars of tokens per tick by kind (``dashboards.data.tokens_over_ticks``)."""
    return alt.Chart(_frame(tokens), title=title).mark_bar().encode(
        x=alt.X("tick:O", title="tick (engine step)"), y=alt.Y("tokens:Q", title="tokens (count)", stack=True),
        color=alt.Color("kind:N", title="tokens"), tooltip=["tick", "kind", "tokens"])


def budget_share_lines(shares: pl.DataFrame, title: str = "Budget left, as a share of each cap") -> alt.Chart:
    """Share (0-1) of each budget cap left after every tick (``dashboards.data.budget_left_shares``)."""
    return line(shares, "tick", "share_left", title, "tick (engine step)", "share of the cap left (0-1)",
                color="cap", color_title="cap")


def with_markers(chart: alt.Chart, markers: Sequence[dict]) -> alt.LayerChart | alt.Chart:
    """Vertical rules at marked ticks (a shock), labelled, over a tick chart."""
    if not markers:
        return chart
    m = pl.DataFrame(list(markers), schema={"tick": pl.Int64, "label": pl.Utf8}, orient="row")
    rule = alt.Chart(_frame(m)).mark_rule(color="#d62728", strokeDash=[6, 3]).encode(x="tick:Q", tooltip=["label"])
    text = alt.Chart(_frame(m)).mark_text(align="left", dx=4, dy=-6, color="#d62728").encode(
        x="tick:Q", y=alt.value(8), text="label:N")
    return alt.layer(chart, rule, text, title=chart.title)


def heatmap(df: pl.DataFrame, x: str, y: str, value: str, title: str, x_title: str, y_title: str,
            value_title: str) -> alt.Chart:
    base = alt.Chart(_frame(df)).encode(
        x=alt.X(f"{x}:N", title=x_title, sort=None), y=alt.Y(f"{y}:N", title=y_title, sort=None))
    rect = base.mark_rect().encode(color=alt.Color(f"{value}:Q", title=value_title,
                                                   scale=alt.Scale(scheme="blues")),
                                   tooltip=[y, x, value])
    text = base.mark_text(fontSize=10).encode(text=alt.Text(f"{value}:Q", format=".0f"))
    return alt.layer(rect, text, title=title)


def trust_graph(nodes: pl.DataFrame, edges: pl.DataFrame, title: str, reveal_roles: bool) -> alt.LayerChart:
    """Edges as rules (opacity = trust weight), nodes coloured by role when revealed, else grey."""
    nodes = nodes.with_columns(pl.col("role") if reveal_roles else pl.lit("hidden").alias("role"))
    x = alt.X("x:Q", title="layout x (spring layout, no units)", axis=alt.Axis(labels=False, ticks=False))
    y = alt.Y("y:Q", title="layout y (spring layout, no units)", axis=alt.Axis(labels=False, ticks=False))
    e = alt.Chart(_frame(edges)).mark_rule(color="#777").encode(
        x=x, y=y, x2="x2:Q", y2="y2:Q",
        opacity=alt.Opacity("weight:Q", title="trust weight (points/10)", scale=alt.Scale(range=[0.05, 0.9])),
        strokeWidth=alt.StrokeWidth("weight:Q", legend=None, scale=alt.Scale(range=[0.5, 4])),
        tooltip=["source", "target", "weight"])
    n = alt.Chart(_frame(nodes)).mark_circle(size=500, opacity=1).encode(
        x=x, y=y, color=alt.Color("role:N", title="role", scale=ROLE_COLOURS), tooltip=["pid", "role"])
    labels = alt.Chart(_frame(nodes)).mark_text(dy=-16, fontSize=11).encode(x=x, y=y, text="pid:N")
    return alt.layer(e, n, labels, title=title)


def calibration(bins: pl.DataFrame, title: str = "Belief calibration (faithful raters)") -> alt.LayerChart:
    """Reliability diagram: observed traitor frequency against mean stated P(traitor)."""
    diag = alt.Chart(pl.DataFrame({"a": [0.0, 1.0], "b": [0.0, 1.0]})).mark_line(strokeDash=[4, 4], color="grey") \
        .encode(x="a:Q", y="b:Q")
    pts = alt.Chart(_frame(bins)).mark_line(point=True).encode(
        x=alt.X("mean_p:Q", title="stated P(traitor) (probability, bin mean)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("observed:Q", title="observed traitor frequency (fraction)", scale=alt.Scale(domain=[0, 1])),
        size=alt.Size("n:Q", title="judgements (count)"), tooltip=["mean_p", "observed", "n"])
    return alt.layer(diag, pts, title=title)


def vote_flows(votes: pl.DataFrame, title: str, reveal_roles: bool) -> alt.Chart:
    """Who voted for whom per round: voter rows, target columns, one panel per round."""
    df = votes.with_columns(pl.lit(1).alias("votes"))
    if not reveal_roles:
        df = df.with_columns(pl.lit("hidden").alias("voter_role"))
    return alt.Chart(_frame(df), title=title).mark_square(size=180).encode(
        x=alt.X("target:N", title="voted for (player)"), y=alt.Y("voter:N", title="voter (player)"),
        color=alt.Color("voter_role:N", title="voter role", scale=ROLE_COLOURS),
        column=alt.Column("tick:O", title="round"), tooltip=["tick", "voter", "target"])


def multi_line(long: pl.DataFrame, title: str, y_title: str, x_title: str = "tick (engine step)") -> alt.Chart:
    """Several metrics over ticks from a (tick, metric, value) frame."""
    return line(long, "tick", "value", title, x_title, y_title, color="metric", color_title="metric")


def compare_bars(df: pl.DataFrame, value: str, title: str, value_title: str) -> alt.Chart:
    return bars(df, "run", value, title, "run", value_title)


def present(df: pl.DataFrame, cols: Sequence[str]) -> bool:
    """Whether a frame has rows and all the given columns (pages skip charts otherwise)."""
    return df.height > 0 and all(c in df.columns for c in cols)
