"""Mutation testing of microdc's named hard rules: break each rule in turn, and fail if no test notices.

Each mutant in `tools/mutants/*.toml` names a rule, a source file, an exact piece of its text (which must
occur exactly once, so a mutant can never silently go stale) and the text that breaks the rule. The tool
copies `src/` to a temporary folder, applies one mutant at a time there, and runs the mutant's tests with
that copy first on `PYTHONPATH` (the working tree is never modified). A mutant whose tests still pass
*survived*: its rule is guarded by nothing, and the run exits 1.

    python tools/mutate.py                      # every file in tools/mutants/
    python tools/mutate.py tools/mutants/check.toml --json mutation.json
    python tools/mutate.py --list               # the rules and their guard tests, no runs
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "tools" / "mutants"
TIMEOUT_S = 240.0
console = Console()


@dataclass(frozen=True)
class Mutant:
    rule: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    source: str  # the TOML file (and index) it came from, for error messages

    @property
    def module(self) -> str:
        return self.file.removeprefix("src/").removesuffix(".py").replace("/", ".")


class MutantError(Exception):
    """A mutant file that is malformed or no longer matches the code it mutates."""


def load_mutants(paths: list[Path]) -> list[Mutant]:
    out: list[Mutant] = []
    problems: list[str] = []
    for path in paths:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            problems.append(f"{path}: cannot read mutants: {exc}")
            continue
        for i, raw in enumerate(data.get("mutant", [])):
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} mutant #{i + 1}"
            missing = [k for k in ("rule", "file", "find", "replace", "tests") if k not in raw]
            if missing:
                problems.append(f"{where}: missing field(s) {', '.join(missing)}")
                continue
            tests = raw["tests"]
            if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
                problems.append(f"{where}: field 'tests' must be a non-empty list of pytest arguments")
                continue
            m = Mutant(raw["rule"], raw["file"], raw["find"], raw["replace"], tuple(tests), where)
            target = ROOT / m.file
            if not target.is_file():
                problems.append(f"{where} ({m.rule}): file {m.file} does not exist")
                continue
            count = target.read_text(encoding="utf-8").count(m.find)
            if count != 1:
                problems.append(
                    f"{where} ({m.rule}): 'find' text occurs {count} times in {m.file} (expected exactly 1): "
                    f"{m.find[:80]!r}"
                )
                continue
            if m.find == m.replace:
                problems.append(f"{where} ({m.rule}): 'replace' equals 'find', so nothing is mutated")
                continue
            out.append(m)
    if problems:
        raise MutantError("\n".join(problems))
    return out


def _env(src_copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src_copy) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutated and a restored file may share size and mtime
    env["HYPOTHESIS_PROFILE"] = env.get("HYPOTHESIS_PROFILE", "default")
    return env


def _pytest(tests: tuple[str, ...], env: dict[str, str]) -> tuple[int, float, str]:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return -1, time.perf_counter() - t0, "timeout"
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode, time.perf_counter() - t0, tail[-1] if tail else ""


def _imports_copy(src_copy: Path, env: dict[str, str]) -> bool:
    """The tests must import microdc from the mutated copy, not from the editable install."""
    probe = subprocess.run(
        [sys.executable, "-c", "import microdc, sys; sys.stdout.write(microdc.__file__)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0 and Path(probe.stdout).resolve().is_relative_to(src_copy.resolve())


def _one(m: Mutant, src_copy: Path, env: dict[str, str]) -> dict[str, object]:
    target = src_copy / m.file.removeprefix("src/")
    original = target.read_text(encoding="utf-8")
    target.write_text(original.replace(m.find, m.replace, 1), encoding="utf-8")
    try:
        code, secs, tail = _pytest(m.tests, env)
    finally:
        target.write_text(original, encoding="utf-8")
    # exit 1 = a test failed; 2/3/4 = errors while collecting or running (the mutant broke the import):
    # both mean the mutant did not pass unnoticed. 5 = no tests ran, which guards nothing.
    killed = code not in (0, 5)
    return {
        "rule": m.rule,
        "module": m.module,
        "file": m.file,
        "tests": list(m.tests),
        "outcome": "killed" if killed else ("no tests" if code == 5 else "SURVIVED"),
        "killed": killed,
        "exit_code": code,
        "seconds": round(secs, 1),
        "detail": tail,
    }


def run(mutants: list[Mutant], jobs: int) -> list[dict[str, object]]:
    """Each worker owns a copy of src/, so mutants run side by side without seeing each other."""
    with tempfile.TemporaryDirectory(prefix="microdc-mutants-") as tmp:
        copies: queue.Queue[tuple[Path, dict[str, str]]] = queue.Queue()
        for w in range(jobs):
            src_copy = Path(tmp) / f"w{w}" / "src"
            shutil.copytree(
                ROOT / "src", src_copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
            env = _env(src_copy)
            if not _imports_copy(src_copy, env):
                raise MutantError(
                    "the tests would not import microdc from the mutated copy (check PYTHONPATH)"
                )
            copies.put((src_copy, env))
        baseline = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
        console.print(f"baseline: {len(baseline)} test target(s) on the unmutated code …")
        src_copy, env = copies.get()
        code, secs, tail = _pytest(baseline, env)
        copies.put((src_copy, env))
        if code != 0:
            raise MutantError(f"the guard tests fail on unmutated code ({tail}); fix them before mutating")
        console.print(f"baseline green in {secs:.1f} s; {len(mutants)} mutants on {jobs} worker(s)")

        def work(m: Mutant) -> dict[str, object]:
            src_copy, env = copies.get()
            try:
                return _one(m, src_copy, env)
            finally:
                copies.put((src_copy, env))

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
        )
        results: list[dict[str, object]] = []
        with Progress(*columns, console=console) as progress, ThreadPoolExecutor(jobs) as pool:
            task = progress.add_task("mutants", total=len(mutants))
            for r in pool.map(work, mutants):
                results.append(r)
                progress.advance(task)
    return results


def report(results: list[dict[str, object]]) -> None:
    table = Table(title="mutants of named rules")
    for col in ("rule", "file", "outcome", "s"):
        table.add_column(col)
    for r in results:
        style = "green" if r["killed"] else "bold red"
        table.add_row(str(r["rule"]), str(r["file"]), f"[{style}]{r['outcome']}[/]", f"{r['seconds']}")
    console.print(table)
    per_module: dict[str, list[bool]] = {}
    for r in results:
        per_module.setdefault(str(r["module"]), []).append(bool(r["killed"]))
    score = Table(title="mutation score per module")
    for col in ("module", "killed", "mutants", "score"):
        score.add_column(col)
    for mod, ks in sorted(per_module.items()):
        score.add_row(mod, str(sum(ks)), str(len(ks)), f"{100 * sum(ks) / len(ks):.0f} %")
    console.print(score)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="mutant TOML files (default: tools/mutants/*.toml)")
    ap.add_argument("--list", action="store_true", help="list the mutants and their guard tests, run nothing")
    ap.add_argument("--rule", action="append", default=[], help="only mutants whose rule contains this text")
    ap.add_argument("--json", type=Path, help="write the results to this JSON file")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants run side by side")
    args = ap.parse_args(argv)
    files = [p.resolve() for p in args.files] or sorted(MUTANTS.glob("*.toml"))
    if not files:
        console.print(f"[red]no mutant files in {MUTANTS}[/]")
        return 2
    try:
        mutants = load_mutants(files)
    except MutantError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    if args.rule:
        mutants = [m for m in mutants if any(r in m.rule for r in args.rule)]
    if args.list:
        for m in mutants:
            console.print(f"{m.rule:45} {m.file:45} {' '.join(m.tests)}")
        return 0
    t0 = time.perf_counter()
    try:
        results = run(mutants, max(1, args.jobs))
    except MutantError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    report(results)
    survived = [r for r in results if not r["killed"]]
    total_s = time.perf_counter() - t0
    if args.json:
        args.json.write_text(
            json.dumps({"seconds": round(total_s, 1), "results": results}, indent=2), encoding="utf-8"
        )
    console.print(
        f"{len(results) - len(survived)}/{len(results)} mutants killed in {total_s:.0f} s"
        + (f"; [bold red]{len(survived)} survived[/]" if survived else "")
    )
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
