"""Cost of issue 15's control-plane checks: value ranges per batch, keyed audit appends, verification
and checkpoint comparison.

    python benchmarks/security_checks.py                 # 20,000 audit entries, batches of 200 and 5,000
    python benchmarks/security_checks.py --entries 2000  # quicker
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from microdc.control import audit, checkpoints, sitelimits
from microdc.control.db import Database
from microdc.control.schemas import ReadingIn

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _readings(n: int) -> list[ReadingIn]:
    kinds = [
        ("Temperature", "Cel", "Intake", 22.5),
        ("Humidity", "%", "Room", 41.0),
        ("Power", "W", "ACInput", 3400.0),
        ("Door", "1", "Door", 0.0),
        ("UPSState", "1", "PowerSubsystem", 0.0),
    ]
    out = []
    for i in range(n):
        t, u, c, v = kinds[i % len(kinds)]
        out.append(
            ReadingIn(
                sensor_id=f"s{i % 20}",
                reading_type=t,
                unit=u,
                physical_context=c,
                ts=T0 + timedelta(seconds=i),
                value=v,
            )
        )
    return out


def _per_call(fn: object, reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - t) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=20_000, help="audit entries to append and verify")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    out: dict[str, float] = {}
    for n in (200, 5000):
        rs = _readings(n)
        out[f"value_range_{n}_ms"] = _per_call(lambda rs=rs: sitelimits.check_values(rs), 50) * 1e3

    fields = {"seq": 1, "ts": T0.isoformat(), "actor": "user:bench", "action": "bench.do", "target": "t:1",
              "outcome": "success", "client_ip": "", "details": '{"i":1}'}  # fmt: skip
    out["legacy_sha256_hash_us"] = _per_call(lambda: audit.legacy_hash(fields, "0" * 64), 20000) * 1e6
    secret = b"k" * 32
    out["keyed_hmac_hash_us"] = (
        _per_call(lambda: audit.keyed_hash(fields, "0" * 64, "ab" * 8, secret), 20000) * 1e6
    )

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db", audit_key_file=Path(tmp) / "audit.key")
        db.migrate()
        t = time.perf_counter()
        with Progress(console=Console(stderr=True)) as progress:
            task = progress.add_task("keyed audit appends", total=args.entries)
            step = 500
            for start in range(0, args.entries, step):
                with db.session() as s:  # 500 appends per transaction: measures the chain, not fsync
                    for i in range(start, min(start + step, args.entries)):
                        audit.append(s, actor="user:bench", action="bench.do", target=f"t:{i}",
                                     details={"i": i}, now=T0)  # fmt: skip
                progress.advance(task, step)
        out["audit_append_us"] = (time.perf_counter() - t) / args.entries * 1e6
        with db.read_session() as s:
            t = time.perf_counter()
            r = audit.verify(s)
            out["audit_verify_entries_per_s"] = r.checked / (time.perf_counter() - t)
            assert r.ok, r.describe()
            folder = Path(tmp) / "cp"
            for k in range(10):  # ten checkpoints spread over the chain
                seq = max(1, args.entries * (k + 1) // 10)
                h = s.execute(
                    audit.select(audit.AuditEntry.hash).where(audit.AuditEntry.seq == seq)
                ).scalar_one()
                checkpoints.publish(folder, checkpoints.sign(db.audit_keyring, seq, h, T0))
            t = time.perf_counter()
            c = checkpoints.check_against(s, db.audit_keyring, checkpoints.load_folder(folder))
            out["checkpoint_check_ms"] = (time.perf_counter() - t) * 1e3
            assert c.ok, c.describe()
            signer = checkpoints.Signer()
            out["heartbeat_checkpoint_us"] = (
                _per_call(lambda: signer.current(s, db.audit_keyring, T0), 2000) * 1e6
            )
            ring = db.audit_keyring
            out["checkpoint_sign_us"] = _per_call(lambda: checkpoints.sign(ring, 1, "0" * 64, T0), 2000) * 1e6
        db.dispose()
    for k, v in out.items():
        print(f"{k:30s} {v:12.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
