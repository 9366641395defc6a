"""Durable local storage: an append-only journal with snapshots. Knows nothing of tickets."""
