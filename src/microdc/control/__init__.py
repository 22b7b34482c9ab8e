"""Control plane: the `microdc serve` service (inventory, enrollment, telemetry, alarms, desired state).

This package's ``__init__`` imports nothing on purpose: the site agent imports
``microdc.protocol.alarm_rules`` and ``microdc.control.site_state`` offline, without FastAPI or SQLAlchemy.
"""
