"""microdc: plan, place, simulate and operate fleets of micro data centers between the edge and the cloud."""

__version__ = "0.1.0"
