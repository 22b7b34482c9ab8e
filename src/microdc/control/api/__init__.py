"""HTTP routers, one per resource. Each is thin: parse, authorize, call the data layer, shape output."""
