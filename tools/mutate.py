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
import contextlib
import json
import os
import queue
import shutil
import signal
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


# Third-party modules every guard test imports: a zygote process imports them once and forks a child per
# mutant, so each run pays only for microdc's own import and the tests (about 3 s less per mutant).
PRELOAD = (
    "numpy",
    "scipy.stats",
    "scipy.optimize",
    "scipy.special",
    "pandas",
    "pyarrow",
    "pydantic",
    "yaml",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "httpx",
    "highspy",
    "simpy",
    "hypothesis",
    "pytest",
    "typer",
    "rich",
    "jinja2",
    "paho.mqtt.client",
)


def _env(src_copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src_copy) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutated and a restored file may share size and mtime
    return env


def _zygote() -> int:
    """Serve runs read as JSON lines on stdin: fork, run pytest in the child on the given src copy, answer."""
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    assert "microdc" not in sys.modules, "the zygote must not import the code under test"
    out = sys.stdout
    for line in sys.stdin:
        job = json.loads(line)
        log = Path(job["log"])
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # the child: mutated microdc first on sys.path, output to the log, pytest in-process
            code = 3
            try:
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.environ.update(job["env"])
                os.chdir(ROOT)
                src = str(ROOT / "src")
                sys.path[:] = [job["src"]] + [p for p in sys.path if p != src]
                if job.get("probe"):
                    import microdc

                    print(microdc.__file__)
                    code = 0
                else:
                    import pytest

                    code = int(pytest.main(job["args"]))
            except BaseException as exc:  # whatever happens, the child must exit
                with contextlib.suppress(Exception):
                    print(f"mutate child: {type(exc).__name__}: {exc}", file=sys.stderr)
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        code = -1
        deadline = time.monotonic() + float(job["timeout"])
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.02)
        out.write(json.dumps({"code": code, "seconds": time.perf_counter() - t0}) + "\n")
        out.flush()
    return 0


class Worker:
    """One copy of src/ and one zygote process; used by one thread at a time."""

    def __init__(self, tmp: Path, index: int):
        self.src = tmp / f"w{index}" / "src"
        shutil.copytree(ROOT / "src", self.src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        self.log = tmp / f"w{index}" / "pytest.log"
        self.env = _env(self.src)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--zygote"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def pytest(self, tests: tuple[str, ...], *, probe: bool = False) -> tuple[int, float, str]:
        args = ["-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
        job = {"args": args, "src": str(self.src), "log": str(self.log), "timeout": TIMEOUT_S, "probe": probe}
        job["env"] = {"PYTHONPATH": self.env["PYTHONPATH"], "PYTHONDONTWRITEBYTECODE": "1"}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise MutantError("a mutation worker died (see its output above)")
        res = json.loads(answer)
        text = self.log.read_text(encoding="utf-8", errors="replace").strip()
        if res["code"] == -1:
            return -1, float(res["seconds"]), "timeout"
        return int(res["code"]), float(res["seconds"]), text if probe else (text.splitlines() or [""])[-1]

    def imports_copy(self) -> bool:
        """The tests must import microdc from the mutated copy, not from the editable install."""
        code, _s, path = self.pytest((), probe=True)
        return code == 0 and Path(path).resolve().is_relative_to(self.src.resolve())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _one(m: Mutant, w: Worker) -> dict[str, object]:
    target = w.src / m.file.removeprefix("src/")
    original = target.read_text(encoding="utf-8")
    target.write_text(original.replace(m.find, m.replace, 1), encoding="utf-8")
    try:
        code, secs, tail = w.pytest(m.tests)
    finally:
        target.write_text(original, encoding="utf-8")
    # exit 1 = a test failed; 2/3/4 = errors while collecting or running (the mutant broke the import),
    # -1 = timeout: each means the mutant did not pass unnoticed. 5 = no tests ran, which guards nothing.
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
        workers = [Worker(Path(tmp), i) for i in range(jobs)]
        try:
            return _run_on(mutants, workers)
        finally:
            for w in workers:
                w.close()


def _run_on(mutants: list[Mutant], workers: list[Worker]) -> list[dict[str, object]]:
    for w in workers:
        if not w.imports_copy():
            raise MutantError("the tests would not import microdc from the mutated copy")
    baseline = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
    console.print(f"baseline: {len(baseline)} test target(s) on the unmutated code …")
    code, secs, tail = workers[0].pytest(baseline)
    if code != 0:
        raise MutantError(f"the guard tests fail on unmutated code ({tail}); fix them before mutating")
    console.print(f"baseline green in {secs:.1f} s; {len(mutants)} mutants on {len(workers)} worker(s)")
    free: queue.Queue[Worker] = queue.Queue()
    for w in workers:
        free.put(w)

    def work(m: Mutant) -> dict[str, object]:
        w = free.get()
        try:
            return _one(m, w)
        finally:
            free.put(w)

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    results: list[dict[str, object]] = []
    with Progress(*columns, console=console) as progress, ThreadPoolExecutor(len(workers)) as pool:
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


def markdown(results: list[dict[str, object]], seconds: float, jobs: int) -> str:
    """The tables of docs/testing.md: the score per module and each rule's guard, from one run."""
    per_module: dict[str, list[bool]] = {}
    for r in results:
        per_module.setdefault(str(r["module"]), []).append(bool(r["killed"]))
    killed = sum(bool(r["killed"]) for r in results)
    lines = [
        f"{killed} of {len(results)} mutants killed in {seconds:.0f} s on {jobs} worker(s).",
        "",
        "| module | mutants | killed | score |",
        "|---|---:|---:|---:|",
    ]
    for mod, ks in sorted(per_module.items()):
        lines.append(f"| `{mod}` | {len(ks)} | {sum(ks)} | {100 * sum(ks) / len(ks):.0f} % |")
    lines += ["", "| rule | mutated file | guard test(s) | outcome |", "|---|---|---|---|"]
    for r in results:
        tests = "<br>".join(f"`{t}`" for t in r["tests"])  # type: ignore[attr-defined]
        lines.append(f"| {r['rule']} | `{r['file']}` | {tests} | {r['outcome']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="mutant TOML files (default: tools/mutants/*.toml)")
    ap.add_argument("--list", action="store_true", help="list the mutants and their guard tests, run nothing")
    ap.add_argument("--rule", action="append", default=[], help="only mutants whose rule contains this text")
    ap.add_argument("--json", type=Path, help="write the results to this JSON file")
    ap.add_argument("--markdown", type=Path, help="write the score and rule tables (docs/testing.md)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants run side by side")
    ap.add_argument("--zygote", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.zygote:
        return _zygote()
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
    if args.markdown:
        args.markdown.write_text(markdown(results, total_s, max(1, args.jobs)), encoding="utf-8")
    console.print(
        f"{len(results) - len(survived)}/{len(results)} mutants killed in {total_s:.0f} s"
        + (f"; [bold red]{len(survived)} survived[/]" if survived else "")
    )
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
