"""Tests of the instrument drivers: protocol pairs for exact bytes, stand-ins over the wire."""
