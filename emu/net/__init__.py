"""The network: frames, the lossy segment, the AoE target, captures."""
