"""Property-based fault sequences: hypothesis draws sequences, runs them and shrinks the failures.

:mod:`.machine` is the state machine (rules = sequence actions, invariants = steady-power criteria),
:mod:`.draws` what it draws, :mod:`.draft` the example as the sequence file it becomes,
:mod:`.invariants` what must hold, :mod:`.campaign` a whole campaign (``gridhil fuzz``). docs/fuzz.md
is the user's guide.
"""
