"""Tools that sit above the machine and drive it: the shared flags, the
run session (observers and the report), the deadlock detector, timelines,
progress, plots, the experiments, and the vblade-compatible AoE server.
The machine never imports them.

Layer: tools.
"""
