"""The HTTP edge: routes, settings, wiring, auth, upload limits, error rendering and response formats."""
