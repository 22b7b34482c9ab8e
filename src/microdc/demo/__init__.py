"""A control plane and agents with simulated sensors on one machine (demos and end-to-end tests)."""
