"""Benchmarks (not tests): inference per execution mode, training steps, data loading and
the data check, one JSON record per measurement. The command is ``relight-bench``
(:mod:`relight.cli.bench`); each measurement runs in a fresh process
(:mod:`relight.bench.worker`)."""
