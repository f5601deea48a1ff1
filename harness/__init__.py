"""gridhil harness: bench, clock, sequences, recorder, criteria, report, CLI, and the simulated plant."""
