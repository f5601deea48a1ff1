"""Tests of the controller package: its faces, its decisions, and closed loops against the simulated bench."""
