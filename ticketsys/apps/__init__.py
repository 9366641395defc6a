"""Wiring: which services, which client, which routes. Each module holds one deployable app."""
