"""Experiments: many runs of the machine, swept over seeds and knobs, run
in parallel by one runner (runner.py), each answering one question
(reserves.py: how much reserve keeps swap over the network alive).

Layer: tools.
"""
