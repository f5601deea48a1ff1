"""The simulated plant (pure numpy, no I/O, no clock) and the stand-in instruments built on it."""
