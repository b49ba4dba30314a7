"""Dashboards on hostile run folders: symlinks out of the root, mistyped files, odd paths; and the bind address.

Every page is driven through Streamlit's AppTest over real run directories (a
scripted Traitors run, copied and then damaged) and real Parquet files.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import polars as pl
import pytest

from dashboards import data, launch

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
SMALL = ["llm=scripted", "env.n_players=6", "env.n_traitors=1", "run.progress=off", "run.checkpoint=false"]


@pytest.fixture(scope="session")
def made_run(tmp_path_factory) -> Path:
    import sim

    d = tmp_path_factory.mktemp("made") / "s1"
    sim.run(["env=traitors", f"run.dir={d}", "seed=1", *SMALL])
    return d


@pytest.fixture()
def runs(made_run, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A runs root holding one good run, and a run outside the root that links may point at."""
    root, outside = tmp_path / "runs", tmp_path / "outside"
    root.mkdir()
    shutil.copytree(made_run, root / "good")
    shutil.copytree(made_run, outside)
    s = json.loads((outside / "summary.json").read_text())
    (outside / "summary.json").write_text(json.dumps(s | {"status": "secret-outside"}))
    monkeypatch.setenv("AGORA_RUNS", str(root))
    return root, outside


def copy_good(root: Path, name: str) -> Path:
    shutil.copytree(root / "good", root / name)
    return root / name


def page(name: str | None = None, state: dict | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.run()
    if name:
        at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def warnings_about(at, run: str) -> list[str]:
    return [w.value for w in at.warning if run in w.value]


# ----- symlinked files leading out of the root ----------------------------------------------


def test_symlinked_summary_outside_root_is_refused(runs):
    root, outside = runs
    (root / "linked").mkdir()
    (root / "linked" / "summary.json").symlink_to(outside / "summary.json")
    n = data.load_run(root, "linked")
    assert isinstance(n, data.Notice) and "summary.json links outside the runs root" in n.message
    table, notices = data.runs_table(root)
    assert table["run"].to_list() == ["good"]
    assert "secret-outside" not in table["status"].to_list()
    assert [x.path.name for x in notices] == ["linked"]
    at = page()
    assert at.dataframe[0].value["run"].tolist() == ["good"]
    assert any("outside the runs root" in w for w in warnings_about(at, "linked"))


def test_symlinked_tables_outside_root_are_refused(runs):
    root, outside = runs
    leak = copy_good(root, "leak")
    (leak / "events.parquet").unlink()
    (leak / "events.parquet").symlink_to(outside / "events.parquet")
    parts = copy_good(root, "parts_leak")  # a killed run whose parts folder is a link out
    for name in ("events", "ledger", "metrics"):
        (parts / f"{name}.parquet").unlink()
    shutil.rmtree(parts / "parts")
    (parts / "parts").symlink_to(outside / "parts")
    assert "events.parquet links outside" in data.load_run(root, "leak").message
    assert "links outside" in data.load_run(root, "parts_leak").message
    at = page("spend")
    assert warnings_about(at, "leak") and warnings_about(at, "parts_leak")
    assert at.dataframe[0].value.shape[0] == 1  # the good run is still compared
    at.switch_page("pages/trust.py").run()
    assert not at.exception
    at.selectbox(key="trust_run").select("leak").run()
    assert not at.exception and any("links outside" in w for w in warnings_about(at, "leak"))


def test_symlinks_inside_the_root_are_followed(runs):
    root, _ = runs
    (root / "alias").mkdir()
    (root / "alias" / "summary.json").symlink_to(root / "good" / "summary.json")
    r = data.load_run(root, "alias")
    assert isinstance(r, data.Run) and r.summary["env"] == "traitors"


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_in_place_of_a_file_is_refused_not_read(runs):
    root, _ = runs
    for name in ("summary.json", "events.parquet"):  # reading a FIFO would block the page forever
        run = copy_good(root, f"fifo_{name.split('.')[0]}")
        (run / name).unlink()
        os.mkfifo(run / name)
        n = data.load_run(root, run.name)
        assert isinstance(n, data.Notice) and f"{name} is not a regular file" in n.message
    at = page()
    assert at.dataframe[0].value["run"].tolist() == ["fifo_events", "good"]
    assert warnings_about(at, "fifo_summary")


def test_trust_graph_outside_root_is_not_read(runs):
    root, outside = runs
    leak = copy_good(root, "leak")
    tick = data.trust_graph_rounds(leak)[-1]
    f = leak / "trust" / f"trust_round_{tick}.graphml"
    assert data.read_trust_graph(root, leak, tick) is not None
    f.unlink()
    f.symlink_to(outside / "trust" / f.name)
    assert data.read_trust_graph(root, leak, tick) is None


# ----- mistyped summaries ----------------------------------------------------------------------

BAD_SUMMARIES = {
    "llm_is_text": {"llm": "openai"},
    "ticks_is_list": {"ticks": [1, 2]},
    "seed_is_text": {"seed": "abc"},
    "budget_is_text": {"budget_usd": "lots"},
    "outcome_is_text": {"outcome": "faithful won"},
    "calls_overflow": {"llm": {"calls": 10 ** 30}},
    "usd_is_bool": {"llm": {"usd": True}},
}
BAD_TEXTS = {"top_level_list": "[1, 2, 3]", "truncated": '{"env": "traitors", "seed": ', "nul": '{"env": "\u0000',
             "deep": "[" * 100_000}


@pytest.mark.parametrize("case", [*BAD_SUMMARIES, *BAD_TEXTS])
def test_bad_summary_is_a_notice_on_every_page(runs, case):
    root, _ = runs
    bad = copy_good(root, "bad")
    if case in BAD_TEXTS:
        (bad / "summary.json").write_text(BAD_TEXTS[case])
    else:
        s = json.loads((bad / "summary.json").read_text())
        patch = BAD_SUMMARIES[case]
        s |= {"llm": s["llm"] | patch["llm"]} if isinstance(patch.get("llm"), dict) else patch
        (bad / "summary.json").write_text(json.dumps(s))
    n = data.load_run(root, "bad")
    assert isinstance(n, data.Notice)
    field = next(iter(BAD_SUMMARIES.get(case, {})), None)
    if field:
        assert field in n.message  # names the field
    at = page()
    assert at.dataframe[0].value["run"].tolist() == ["good"]
    assert warnings_about(at, "bad")
    at.switch_page("pages/spend.py").run()
    assert not at.exception and warnings_about(at, "bad")
    assert at.dataframe[0].value.shape[0] == 1
    at.switch_page("pages/trust.py").run()
    assert not at.exception and warnings_about(at, "bad")
    assert at.dataframe[0].value.shape[0] > 0  # the good run's transcript


def test_summary_problem_accepts_missing_and_null_fields():
    assert data.summary_problem({}) is None
    assert data.summary_problem({"llm": None, "seed": None, "budget_usd": 0.5, "wall_s": 3}) is None
    assert data.summary_problem({"ticks": True}) == "summary.json field ticks is a JSON boolean, expected integer"
    assert data.summary_problem({"llm": {"usd": "1"}}) == "summary.json field llm.usd is a JSON string, expected number"


# ----- events with the wrong columns or payloads ---------------------------------------------


@pytest.mark.parametrize("case,expect", [
    ("no_columns", "events table lacks column(s)"),
    ("kind_is_number", "events table column kind is Int64"),
    ("payload_not_json", "does not hold readable Traitors events"),
    ("payload_is_list", "does not hold readable Traitors events"),
])
def test_bad_events_are_a_notice_on_trust_page(runs, case, expect):
    root, _ = runs
    bad = copy_good(root, "bad")
    ev = pl.read_parquet(bad / "events.parquet")
    if case == "no_columns":
        ev = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    elif case == "kind_is_number":
        ev = ev.with_columns(pl.lit(7, pl.Int64).alias("kind"))
    else:
        text = "not json {" if case == "payload_not_json" else "[1, 2]"
        ev = ev.with_columns(pl.when(pl.col("kind").is_in(["belief", "role", "vote"])).then(pl.lit(text))
                             .otherwise(pl.col("payload")).alias("payload"))
    ev.write_parquet(bad / "events.parquet")
    at = page("trust")  # nothing selected: both runs, the bad one first
    assert at.selectbox(key="trust_run").value == "bad"
    assert any(expect in w for w in warnings_about(at, "bad")), [w.value for w in at.warning]
    at.selectbox(key="trust_run").select("good").run()
    assert not at.exception
    assert at.dataframe[0].value.shape[0] > 0


# ----- "Open a run by path" ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["good\x00/x", "\x00", "a" * 5000, "good/" + "x/" * 3000])
def test_open_by_path_never_crashes(runs, text):
    at = page()
    at.text_input(key="open_path").input(text).run()
    assert not at.exception
    assert at.error and not at.success
    assert all(len(e.value) < 400 for e in at.error)  # the pasted path is shortened in the message
    at.text_input(key="open_path").input("good").run()
    assert any("events" in s.value for s in at.success)


# ----- the address `agora dashboard` listens on ----------------------------------------------


def address_of(argv: list[str]) -> str:
    assert argv.count("--server.address") == 1
    return argv[argv.index("--server.address") + 1]


def test_dashboard_binds_loopback_by_default(tmp_path):
    lx = launch.streamlit_command(["--runs", str(tmp_path)], environ={})
    assert address_of(lx.argv) == "127.0.0.1" and lx.warning is None
    assert lx.env["AGORA_RUNS"] == str(tmp_path.resolve())
    assert lx.argv[lx.argv.index("--server.port") + 1] == "8501"


@pytest.mark.parametrize("args,address", [(["--address", "0.0.0.0"], "0.0.0.0"),
                                          (["--server.address=0.0.0.0"], "0.0.0.0"),
                                          (["--server.address", "::"], "::"),
                                          (["--address", "192.168.1.5"], "192.168.1.5"),
                                          (["--address", "dashboards.example"], "dashboards.example")])
def test_exposed_address_is_explicit_and_warned(args, address):
    lx = launch.streamlit_command(args, environ={})
    assert address_of(lx.argv) == address  # Streamlit's own spelling cannot add a second, silent address
    assert lx.warning and "not just this machine" in lx.warning


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_addresses_need_no_warning(address):
    assert launch.streamlit_command(["--address", address], environ={}).warning is None


def test_cli_dashboard_warns_on_stderr_and_passes_address(monkeypatch, capsys, tmp_path):
    from sim import cli

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda argv, env: calls.append((argv, env)) or 0)
    assert cli.main(["dashboard", "--runs", str(tmp_path)]) == 0
    assert address_of(calls[-1][0]) == "127.0.0.1"
    assert capsys.readouterr().err == ""
    assert cli.main(["dashboard", "--runs", str(tmp_path), "--address", "0.0.0.0", "--theme.base", "dark"]) == 0
    assert address_of(calls[-1][0]) == "0.0.0.0" and calls[-1][0][-2:] == ["--theme.base", "dark"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and "every network interface" in err[0]


@pytest.mark.parametrize("args", [["--port", "abc"], ["--port", "70000"], ["--address"], ["--runs", __file__]])
def test_cli_dashboard_bad_argument_is_one_line(monkeypatch, capsys, args):
    from sim import cli

    monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("started a server"))
    assert cli.main(["dashboard", *args]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_cli_dashboard_help_documents_address(capsys):
    from sim import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["dashboard", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--address" in out and "127.0.0.1" in out and "0.0.0.0" in out


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of sockets listening on ``port``."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.rsplit(":", 1)
            if int(p, 16) == port and state == "0A":  # 0A = LISTEN
                out.append(addr)
    return out


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads the listening sockets from /proc")
def test_real_server_listens_on_loopback_only(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lx = launch.streamlit_command(["--runs", str(tmp_path), "--port", str(port)])
    proc = subprocess.Popen(lx.argv, env=lx.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:  # Streamlit prints its URL once the socket is listening
            if "URL:" in line:
                break
        assert _listening(port) == ["0100007F"]  # 127.0.0.1, and nothing else (no 0.0.0.0, no ::)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        proc.terminate()
        proc.wait(timeout=30)
