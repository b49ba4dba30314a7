"""Declared metrics shaped for the pages: values as written, titles and units from the specs."""
from __future__ import annotations

import math

import polars as pl

from dashboards import declared
from sim.engine import MetricSpec

SPECS = (
    MetricSpec("price", "Last price", "cents", "prices"),
    MetricSpec("mid", "Mid quote", "cents", "prices"),
    MetricSpec("volume", "Volume", "units", "activity"),
    MetricSpec("trades", "Trades", "trades", "activity"),
    MetricSpec("winner", "Winner", "", "game", source="outcome", doc="who won"),
    MetricSpec("eff", "Efficiency", "share", "game", True, "outcome"),
    MetricSpec("per_usd", "Value per USD", "value / USD", "game", True, "outcome"),
)


def test_groups_keep_declaration_order_and_split_units():
    groups = declared.tick_groups(SPECS)
    assert list(groups) == ["prices", "activity"]
    assert list(declared.outcome_groups(SPECS)) == ["game"]
    units = declared.by_unit(groups["activity"])
    assert list(units) == ["units", "trades"]
    assert declared.chart_title("activity", "units", len(units)) == "Activity: units"
    assert declared.chart_title("prices", "cents", 1) == "Prices"


def test_long_series_uses_titles_and_drops_nan():
    met = pl.DataFrame({"tick": [1, 2], "price": [10.0, math.nan], "mid": [9.5, 9.0], "other": [1, 2]})
    long = declared.long_series(met, declared.tick_groups(SPECS)["prices"])
    assert sorted(long["metric"].unique().to_list()) == ["Last price", "Mid quote"]
    assert long.filter(pl.col("metric") == "Last price")["value"].to_list() == [10.0]
    assert declared.missing_columns(met, SPECS) == [SPECS[2], SPECS[3]]


def test_outcome_rows_show_values_as_written():
    rows = declared.outcome_rows(list(declared.outcome_groups(SPECS)["game"]),
                                 {"winner": "faithful", "eff": 0.123456, "per_usd": None})
    assert rows["value"].to_list() == ["faithful", "0.1235", "n/a"]
    assert rows["better"].to_list() == ["", "higher", "higher"]
    assert rows["meaning"].to_list()[0] == "who won"
    missing = declared.outcome_rows([SPECS[4]], {})
    assert missing["value"].to_list() == ["not written"]


def test_outcome_table_one_column_per_declared_metric():
    t = declared.outcome_table(["a", "b"], [{"winner": "traitors"}, None], SPECS)
    assert t.columns == ["run", "Winner", "Efficiency [share]", "Value per USD [value / USD]"]
    assert t.row(0) == ("a", "traitors", "not written", "not written")


def test_undeclared_columns_in_natural_order():
    met = pl.DataFrame({"tick": [1], "rate_10": [0.1], "rate_2": [0.2], "price": [1.0], "label": ["x"],
                        "ok": [True]})
    assert declared.undeclared_columns(met, SPECS) == ["rate_2", "rate_10"]


def test_every_registered_environment_declares_titled_groups():
    from environments.registry import ENVIRONMENTS

    for env in ENVIRONMENTS:
        specs = declared.specs_of(env)
        assert declared.tick_groups(specs) and all(s.title for s in specs), env
    assert declared.specs_of("no-such-env") == ()
