"""Evaluation of conversational motion against the teacher (see ``docs/evaluation.md``).

:mod:`infp_sdk.eval.metrics` holds the metrics (pure NumPy); :mod:`infp_sdk.eval.report` runs
models over a dataset split, tabulates the metrics, plots a session and adds ``infp-sdk eval``.
"""
