"""Fuzzing the verifier's pure core: ``inputs`` (what is generated and the invariant),
``long_run`` (``python -m tests.fuzz.long_run``, ``make fuzz``); the short run is
``tests/unit/test_fuzz.py`` in ``make test``."""
