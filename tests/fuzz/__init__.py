"""Tests of the property-based fault sequences (harness.fuzz) and ``gridhil fuzz``."""
