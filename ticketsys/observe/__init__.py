"""Observability: Prometheus metrics (a registry and its text exposition), the process's own
figures, and logging (formats, the request id on every line). Sans-IO where it can be: counting
is plain arithmetic on the hot path; reading the process and rendering happen at scrape time."""
