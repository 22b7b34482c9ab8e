"""`microdc run` end to end through the CLI: files written on success, exit 2 and no traceback on errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from microdc.cli.main import app

runner = CliRunner()
ALTERNATIVES = ("microdc", "cloud-only", "nearest", "greedy")


def _run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, ["run", *args])
    return res.exit_code, res.output + (
        str(res.exception) if res.exception and res.exit_code not in (0, 2) else ""
    )


def test_run_tiny_end_to_end(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    scenario = tiny_dir / "scenario.yaml"  # sites that fail often, so that two days see faults
    scenario.write_text(
        scenario.read_text() + "reliability:\n  defaults:\n    site_outage: {mtbf_hours: 12, mttr_hours: 2}\n"
    )
    code, text = _run(str(scenario), "-o", str(out), "--days", "2", "--step", "1h")
    assert code == 0, text
    for name in ("report.html", "comparison.json", "plan.json"):
        assert (out / name).is_file()
    for alt in ALTERNATIVES:
        for name in (
            "plan.json",
            "timeseries.parquet",
            "service_latency.parquet",
            "events.json",
            "summary.json",
        ):
            assert (out / alt / name).is_file(), f"{alt}/{name}"
    doc = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert [e["alternative"] for e in doc["alternatives"]] == list(ALTERNATIVES)
    assert doc["days"] == 2 and doc["step_minutes"] == 60
    # faults per candidate site from the failure rates, one schedule for every alternative
    assert doc["faults"] and {f["source"] for f in doc["faults"]} == {"failure rates"}
    assert {f["site"] for f in doc["faults"] if f["kind"] == "site_outage"} == {"berlin", "munich", "paris"}
    exposure = {e["alternative"]: e["fault_exposure"] for e in doc["alternatives"]}
    assert exposure["cloud-only"]["fault_hours"] == 0 and exposure["cloud-only"]["sites_built"] == 0
    assert exposure["microdc"]["fault_hours"] > 0
    assert "Exposure: the same fault schedule" in (out / "report.html").read_text(encoding="utf-8")
    ours = doc["alternatives"][0]
    assert ours["sovereignty_violations"] == 0
    assert set(ours["cost_breakdown"]) == {"capex", "energy", "cloud", "egress", "site"}
    assert abs(sum(ours["cost_breakdown"].values()) - ours["cost_per_year"]) < 1e-6
    assert "Alternatives compared" in text and "cost/year" in text
    assert "Traceback" not in text


def test_run_without_faults_and_one_baseline(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = _run(
        str(tiny_dir / "scenario.yaml"),
        "-o",
        str(out),
        "--days",
        "1",
        "--step",
        "1h",
        "--no-faults",
        "--baselines",
        "cloud-only",
    )
    assert code == 0, text
    doc = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert [e["alternative"] for e in doc["alternatives"]] == ["microdc", "cloud-only"]
    assert doc["faults"] == []
    assert json.loads((out / "microdc" / "events.json").read_text(encoding="utf-8")) == []


def test_run_with_the_fault_drill(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["-o", str(out), "--days", "2", "--step", "1h", "--faults", "drill", "--baselines", "cloud-only"]
    code, text = _run(str(tiny_dir / "scenario.yaml"), *args)
    assert code == 0, text
    doc = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert {f["kind"] for f in doc["faults"]} == {"site_outage", "cooling_failure", "uplink_cut"}


def test_run_with_a_faults_file(tiny_dir: Path, tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(
        "faults:\n  - {kind: site_outage, site: paris, time: 2023-01-01T03:00:00Z, duration: 2h}\n"
    )
    out = tmp_path / "out"
    code, text = _run(
        str(tiny_dir / "scenario.yaml"),
        "-o",
        str(out),
        "--days",
        "1",
        "--step",
        "1h",
        "--faults",
        str(faults),
    )
    assert code == 0, text
    doc = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert [(f["kind"], f["site"]) for f in doc["faults"]] == [("site_outage", "paris")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "days"),
        (["--step", "soon"], "bad step"),
        (["--baselines", "magic"], "unknown baseline"),
    ],
)
def test_bad_options_exit_2(tiny_dir: Path, tmp_path: Path, args: list[str], message: str) -> None:
    code, text = _run(str(tiny_dir / "scenario.yaml"), "-o", str(tmp_path / "out"), *args)
    assert code == 2, text
    assert message in text
    assert "Traceback" not in text


def test_bad_scenario_exit_2(tiny_dir: Path, tmp_path: Path) -> None:
    (tiny_dir / "sites.csv").write_text(
        "id,name,lat,lon,jurisdiction,security_tier,grid_power_kw,annual_cost\n"
        "berlin,Berlin,152.52,13.40,DE,3,30,20000\n"
    )
    code, text = _run(str(tiny_dir / "scenario.yaml"), "-o", str(tmp_path / "out"))
    assert code == 2
    assert "sites.csv" in text and "Traceback" not in text


def test_missing_scenario_exit_2(tmp_path: Path) -> None:
    code, text = _run(str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "out"))
    assert code == 2
    assert "Traceback" not in text


def test_bad_faults_file_exit_2(tiny_dir: Path, tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  - {kind: meteor, site: paris, time: 2023-01-01T03:00:00Z}\n")
    code, text = _run(str(tiny_dir / "scenario.yaml"), "-o", str(tmp_path / "out"), "--faults", str(faults))
    assert code == 2
    assert "faults.yaml" in text and "Traceback" not in text


def test_unplannable_scenario_exit_2(tiny_dir: Path, tmp_path: Path) -> None:
    path = tiny_dir / "scenario.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["policies"]["data_classes"]["personal"]["min_security_tier"] = 4  # no site is a vault
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    code, text = _run(str(path), "-o", str(tmp_path / "out"), "--days", "1")
    assert code == 2
    assert "cannot plan" in text and "security tier" in text
    assert "Traceback" not in text


@pytest.mark.slow
def test_default_run_is_melbourne(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = _run("-o", str(out))
    assert code == 0, text
    doc = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert doc["scenario"] == "melbourne" and doc["days"] == 14
    assert doc["alternatives"][0]["sovereignty_violations"] == 0
    assert (out / "report.html").stat().st_size > 1_000_000


def test_open_opens_the_report(tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    out = tmp_path / "out"
    code, text = _run(
        str(tiny_dir / "scenario.yaml"), "-o", str(out), "--days", "1", "--step", "1h", "--open"
    )
    assert code == 0, text
    assert opened == [(out / "report.html").resolve().as_uri()]


def test_unwritable_output_exit_2(tiny_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, text = _run(
        str(tiny_dir / "scenario.yaml"), "-o", str(blocker / "out"), "--days", "1", "--step", "1h"
    )
    assert code == 2
    assert "cannot write" in text and "Traceback" not in text


def _map_images(report: Path) -> list[dict[str, object]]:
    html = report.read_text(encoding="utf-8")
    start = html.index('<script type="application/json" id="figures">') + len(
        '<script type="application/json" id="figures">'
    )
    figures = json.loads(html[start : html.index("</script>", start)])
    return list(figures["map"]["layout"].get("images", []))


def test_own_tiles_reach_the_report_map_and_are_off_by_default(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = [
        str(tiny_dir / "scenario.yaml"),
        "--days",
        "1",
        "--step",
        "1h",
        "--no-faults",
        "--baselines",
        "cloud-only",
    ]
    monkeypatch.delenv("MICRODC_MAP_TILE_URL", raising=False)
    code, text = _run(*base, "-o", str(tmp_path / "plain"))
    assert code == 0, text
    assert _map_images(tmp_path / "plain" / "report.html") == []  # offline by default
    code, text = _run(
        *base, "-o", str(tmp_path / "opt"), "--tiles", "https://tiles.example.org/{z}/{x}/{y}.png"
    )
    assert code == 0, text
    report = tmp_path / "opt" / "report.html"
    images = _map_images(report)
    assert images and all(str(i["source"]).startswith("https://tiles.example.org/") for i in images)
    assert "loads from https://tiles.example.org" in report.read_text(encoding="utf-8")
    monkeypatch.setenv("MICRODC_MAP_TILE_URL", "https://env.example.org/{z}/{x}/{y}.png")
    code, text = _run(*base, "-o", str(tmp_path / "env"))
    assert code == 0, text
    assert str(_map_images(tmp_path / "env" / "report.html")[0]["source"]).startswith(
        "https://env.example.org/"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://tiles.example.org/tile.png", "lacks {z}"),
        ("ftp://tiles.example.org/{z}/{x}/{y}.png", "is not http(s)"),
    ],
)
def test_bad_tile_url_exit_2(tiny_dir: Path, tmp_path: Path, url: str, message: str) -> None:
    out = tmp_path / "out"
    code, text = _run(str(tiny_dir / "scenario.yaml"), "-o", str(out), "--days", "1", "--tiles", url)
    text = " ".join(text.split())  # rich wraps the message at the terminal width
    assert code == 2, text
    assert message in text and "expected http(s)://host/{z}/{x}/{y}.png" in text and "Traceback" not in text
    assert not out.exists()  # refused before anything ran
