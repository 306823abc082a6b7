"""API routers, one module per resource, each exporting ``router``."""
