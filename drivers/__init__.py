"""Instrument drivers: wire protocols and command sets, nothing of physics or tests."""
