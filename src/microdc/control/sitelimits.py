"""A site may speak only for itself, within reason: the checks telemetry ingest runs before it stores.

* ``value-range`` — every reading inside its type's physical range (protocol/vocab.py's table, which the
  agent checks too): 422 naming the reading's index, field and range;
* ``sensor-type-change`` — a sensor keeps the reading type, unit and physical context it was first
  reported with (a door sensor that starts reporting "Temperature" would silently change what its
  history means): 409 naming the sensor, what it was and what was sent;
* ``site-sensor-limit`` — a site has at most `site_max_sensors` sensors: a batch that would add more gets
  429 with a long Retry-After. Nothing of the batch is stored, and the agent keeps it queued, so raising
  the limit delivers it — no data is lost, and one credential cannot grow the database and /metrics
  without bound.

Each refusal is a problem whose `rule` member names the rule (counted in ``microdc_refused_total``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from microdc.control.models import Sensor
from microdc.control.problems import ProblemError
from microdc.control.schemas import ReadingIn
from microdc.protocol.vocab import range_problem

RULE_RANGE = "value-range"
RULE_TYPE_CHANGE = "sensor-type-change"
RULE_SENSOR_LIMIT = "site-sensor-limit"
RULE_REQUEST_RATE = "site-request-rate"


def check_values(rs: Sequence[ReadingIn]) -> None:
    """Refuse the batch at its first reading outside its type's range (422 `value-range`)."""
    for i, r in enumerate(rs):
        why = range_problem(r.reading_type, r.unit, r.physical_context, r.value)
        if why is not None:
            raise ProblemError(
                422,
                f"{RULE_RANGE}: readings[{i}].value (sensor {r.sensor_id!r}): {why}; nothing of this batch "
                "was stored",
                slug=RULE_RANGE,
                title="Reading outside its type's range",
                rule=RULE_RANGE,
                index=i,
                field=f"readings[{i}].value",
                sensor_id=r.sensor_id,
            )


def _kind(r: ReadingIn) -> tuple[str, str, str]:
    return (r.reading_type.value, r.unit, r.physical_context.value)


def _type_change(
    sensor_id: str, was: tuple[str, str, str], sent: tuple[str, str, str], how: str
) -> ProblemError:
    return ProblemError(
        409,
        f"{RULE_TYPE_CHANGE}: sensor {sensor_id!r} {how} {'/'.join(was)} (type/unit/context) but this batch "
        f"sends {'/'.join(sent)}; use a new sensor_id for a different measurement",
        slug=RULE_TYPE_CHANGE,
        title="Sensor reading type changed",
        rule=RULE_TYPE_CHANGE,
        sensor_id=sensor_id,
        stored={"reading_type": was[0], "unit": was[1], "physical_context": was[2]},
        sent={"reading_type": sent[0], "unit": sent[1], "physical_context": sent[2]},
    )


def check_sensors(
    session: Session, site_id: str, rs: Sequence[ReadingIn], *, max_sensors: int, retry_after_s: int
) -> None:
    """Type changes (within the batch and against stored sensors) and the site's sensor quota."""
    sent: dict[str, tuple[str, str, str]] = {}
    for r in rs:
        k = _kind(r)
        prev = sent.setdefault(r.sensor_id, k)
        if prev != k:
            raise _type_change(r.sensor_id, prev, k, "is sent in this batch as")
    ids = sorted(sent)
    stored: dict[str, tuple[str, str, str]] = {}
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        for sid, rtype, unit, ctx in session.execute(
            select(Sensor.sensor_id, Sensor.reading_type, Sensor.unit, Sensor.physical_context).where(
                Sensor.site_id == site_id, Sensor.sensor_id.in_(chunk)
            )
        ):
            stored[sid] = (rtype, unit, ctx)
    for sid, was in stored.items():
        if sent[sid] != was:
            raise _type_change(sid, was, sent[sid], "was first reported as")
    new = len(ids) - len(stored)
    if new == 0:
        return
    have = int(session.scalar(select(func.count()).select_from(Sensor).where(Sensor.site_id == site_id)) or 0)
    if have + new > max_sensors:
        raise ProblemError(
            429,
            f"{RULE_SENSOR_LIMIT}: site {site_id!r} has {have} sensors and this batch adds {new}, over its "
            f"limit of {max_sensors} (setting site_max_sensors); nothing of this batch was stored — an "
            "operator must raise the limit or remove sensors",
            slug=RULE_SENSOR_LIMIT,
            title="Too many sensors for one site",
            headers={"Retry-After": str(retry_after_s)},
            rule=RULE_SENSOR_LIMIT,
            limit=max_sensors,
            sensors=have,
            new_sensors=new,
        )
