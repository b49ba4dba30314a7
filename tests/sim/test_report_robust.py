"""`agora report` on damaged summaries: one bad run never loses a folder's report."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.cli import main


def summary(seed: int, winner: str = "faithful") -> dict:
    return {"env": "traitors", "seed": seed, "status": "completed", "ticks": 7, "wall_s": 0.5, "budget_usd": 5.0,
            "outcome": {"winner": winner, "p_faithful_win_random": 0.375, "rounds": 3},
            "llm": {"provider": "scripted", "model": "scripted", "is_llm": False, "calls": 10, "attempts": 10,
                    "tokens_in": 0, "tokens_out": 0, "usd": 0.0}}


def write(run: Path, text: str) -> Path:
    run.mkdir(parents=True)
    (run / "summary.json").write_text(text)
    return run


BAD = {
    "truncated": '{"env": "traitors", "seed": 3, "llm": {"us',
    "a_list": "[1, 2, 3]",
    "llm_is_text": json.dumps({**summary(4), "llm": "scripted"}),
    "usd_is_text": json.dumps({**summary(5), "llm": {**summary(5)["llm"], "usd": "cheap"}}),
    "seed_is_text": json.dumps({**summary(6), "seed": "six"}),
    "garbage": "\u00ff\u00fe{",
}


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "sweep"
    write(root / "0", json.dumps(summary(0)))
    write(root / "1", json.dumps(summary(1, "traitors")))
    write(root / "2", json.dumps(summary(2)))
    for name, text in BAD.items():
        write(root / name, text)
    return root


def test_bad_runs_are_skipped_with_one_warning_each(sweep, capsys):
    assert main(["report", str(sweep), "--json"]) == 0
    out = capsys.readouterr()
    rep = json.loads(out.out)
    assert rep["runs"] == 3
    assert rep["traitors/scripted"]["n"] == 3
    assert rep["traitors/scripted"]["win_rate"] == pytest.approx(2 / 3)
    warnings = out.err.strip().splitlines()
    assert len(warnings) == len(BAD)
    assert all(w.startswith("warning: ") and w.endswith("; skipped") for w in warnings)
    for name in BAD:
        assert sum(f"/{name}/summary.json" in w for w in warnings) == 1
    assert "Traceback" not in out.err


def test_table_report_survives_bad_runs(sweep, capsys):
    assert main(["report", str(sweep)]) == 0
    out = capsys.readouterr()
    assert "Sweep: 3 runs" in out.out and "faithful win rate" in out.out


def test_outcome_of_mixed_types_across_runs(tmp_path, capsys):
    root = tmp_path / "sweep"
    write(root / "0", json.dumps(summary(0)))
    write(root / "1", json.dumps({**summary(1), "outcome": {**summary(1)["outcome"], "winner": 5, "rounds": "x"}}))
    assert main(["report", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == 2


def test_folder_of_only_bad_runs_is_one_error(tmp_path, capsys):
    root = tmp_path / "sweep"
    write(root / "a", "[]")
    write(root / "b", "{")
    assert main(["report", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: none of the 2 run summaries could be read")
    assert len(err) == 3  # a warning per run, then the error


@pytest.mark.parametrize("name", sorted(BAD))
def test_single_bad_run_is_one_error_line(tmp_path, capsys, name):
    run = write(tmp_path / "run", BAD[name])
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {run}/summary.json: ")


def test_single_run_with_unreadable_ledger_still_reports(tmp_path, capsys):
    run = write(tmp_path / "run", json.dumps(summary(0)))
    (run / "ledger.parquet").write_bytes(b"PAR1 not really")
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr()
    assert "traitors" in out.out
    assert out.err.startswith("warning: ") and "ledger unreadable" in out.err
