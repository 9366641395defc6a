"""Fault tests: real processes killed, frozen or flooded, and what they must still promise."""
