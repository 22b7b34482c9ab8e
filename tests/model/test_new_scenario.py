"""`microdc new`: a user's own tables, with their own column names, become a scenario that validates and
plans; bad cells are errors naming file, line and column."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.model import load_scenario

MELBOURNE = Path(__file__).parents[2] / "src" / "microdc" / "examples" / "melbourne"


@pytest.fixture
def tables(tmp_path: Path) -> tuple[Path, Path]:
    s = pd.read_csv(MELBOURNE / "sites.csv").head(25)
    towers = s.rename(columns={"id": "Station ID", "name": "Site Name", "lat": "Y_COORD", "lon": "X_COORD"})
    towers[["Station ID", "Site Name", "Y_COORD", "X_COORD"]].to_csv(
        tmp_path / "towers.csv", index=False, sep=";"
    )
    d = pd.read_csv(MELBOURNE / "demand.csv")
    d = d[d.service == "ar-guidance"].head(30)
    users = pd.DataFrame(
        {"cell": "c" + d["id"].str[-3:], "where_lat": d.lat, "where_lon": d.lon, "subs": d.devices}
    )
    users.to_csv(tmp_path / "users.csv", index=False)
    return tmp_path / "towers.csv", tmp_path / "users.csv"


def test_new_from_other_column_names_validates_and_plans(tables: tuple[Path, Path], tmp_path: Path) -> None:
    towers, users = tables
    out = tmp_path / "my-fleet"
    args = ["new", str(out), "--sites", str(towers), "--demand", str(users), "--from-example", "melbourne"]
    args += [
        "--id-col",
        "Station ID",
        "--name-col",
        "Site Name",
        "--lat-col",
        "Y_COORD",
        "--lon-col",
        "X_COORD",
    ]
    args += ["--demand-lat-col", "where_lat", "--demand-lon-col", "where_lon", "--demand-id-col", "cell"]
    args += ["--weight-col", "subs", "--devices-per-unit", "2", "--infer-bbox"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "is valid" in r.output
    s = load_scenario(out)
    assert len(s.sites) == 25 and s.sites[0].id == "optus-10003026" and s.sites[0].name.startswith("Spring")
    assert {d.service for d in s.demand} == {"video-analytics", "ar-guidance", "iot-telemetry"}
    src = pd.read_csv(users)
    assert sum(d.devices for d in s.demand) == pytest.approx(2 * src["subs"].sum(), rel=0.02)  # rounding only
    vic = s.tree.bbox["AU-VIC"]
    assert vic is not None and vic[0] <= min(x.lat for x in s.sites)
    plan = tmp_path / "plan.json"
    r = CliRunner().invoke(app, ["plan", str(out), "-o", str(plan), "--time-limit", "60"])
    assert r.exit_code == 0, r.output
    built = json.loads(plan.read_text())
    assert built["sites"], "the plan builds at least one MDC for this demand"


def test_new_elsewhere_adds_its_jurisdiction(tables: tuple[Path, Path], tmp_path: Path) -> None:
    towers, users = tables
    for f in (towers, users):  # move everything to Auckland (outside every Australian box)
        df = pd.read_csv(f, sep=None, engine="python")
        lat, lon = (
            next(c for c in df.columns if "lat" in c.lower() or c == "Y_COORD"),
            next(c for c in df.columns if "lon" in c.lower() or c == "X_COORD"),
        )
        df[lat] = df[lat] + (-36.85 + 37.81)
        df[lon] = df[lon] + (174.76 - 144.96)
        df.to_csv(f, index=False)
    out = tmp_path / "akl"
    r = CliRunner().invoke(
        app,
        [
            "new",
            str(out),
            "--sites",
            str(towers),
            "--demand",
            str(users),
            "--lat-col",
            "Y_COORD",
            "--lon-col",
            "X_COORD",
            "--demand-lat-col",
            "where_lat",
            "--demand-lon-col",
            "where_lon",
            "--jurisdiction",
            "NZ",
            "--infer-bbox",
            "--id-col",
            "Station ID",
        ],
    )
    assert r.exit_code == 0, r.output
    data = yaml.safe_load((out / "scenario.yaml").read_text())
    nz = [j for j in data["jurisdictions"] if j["code"] == "NZ"]
    assert (
        nz and nz[0]["bbox"][0] < -36.85 < nz[0]["bbox"][2] and nz[0]["bbox"][1] < 174.76 < nz[0]["bbox"][3]
    )


@pytest.mark.parametrize(
    ("rows", "flags", "expected"),
    [
        ("id,lat,lon,users\na,-37.8,abc,5\n", [], "users.csv:2 [lon]: expected a number, found 'abc'"),
        ("id,lat,lon,users\na,123,144.9,5\n", [], "users.csv:2 [lat]: latitude 123 outside -90..90"),
        ("id,lat,lon,users\na,-37.8,144.9,-4\n", [], "users.csv:2 [users]: expected a count >= 0"),
        ("id,breite,laenge\na,-37.8,144.9\n", [], "no column for latitude: none of lat, latitude"),
        ("id,lat,lon\na,-37.8,144.9\n", ["--weight-col", "pop"], "no column 'pop' for devices or users"),
    ],
)
def test_bad_input_names_file_row_and_column(
    tables: tuple[Path, Path], tmp_path: Path, rows: str, flags: list[str], expected: str
) -> None:
    towers, _ = tables
    bad = tmp_path / "users.csv"
    bad.write_text(rows)
    r = CliRunner().invoke(
        app,
        [
            "new",
            str(tmp_path / "out"),
            "--sites",
            str(towers),
            "--demand",
            str(bad),
            "--lat-col",
            "Y_COORD",
            "--lon-col",
            "X_COORD",
            "--demand-lat-col",
            "lat",
            "--demand-lon-col",
            "lon",
            *flags,
        ]
        if "breite" not in rows
        else ["new", str(tmp_path / "out"), "--sites", str(bad), "--demand", str(bad)],
    )
    assert r.exit_code == 2
    assert expected in " ".join(r.output.split()), r.output
    assert "Traceback" not in r.output
