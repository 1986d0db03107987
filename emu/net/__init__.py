"""The network: frames, the lossy segment, the AoE target, captures.

    frames / codec   the AoE frame codec (reference + the Cython twin fast/frames.pyx)
    layers           the scapy model of Ethernet + AoE r11
    fcs              Ethernet FCS on the wire
    netem / link     netem spelling and one netem link direction in virtual time
    segment          the learning switch joining ports (two links each) and its tap
    noise            the --noise traffic generator
    store / ata      backing stores and the ATA identify block
    aoe_target       the vblade-compatible AoE target (embedded endpoint)
    bridge / rawsock the segment joined to a real interface (AF_PACKET)
    pcap             --pcap captures
    initiator        a minimal AoE initiator for tests and benchmarks
    network          everything assembled from a NetConfig for the machine

The same target on a real interface (`emu aoe-target`) is a tool:
emu/tools/aoe_server.py; the network flags live in emu/tools/flags.py.
See docs/network.md.

Layer: net (imports only emu.core).
"""
