"""The face: the `emu` command. It parses the command line and dispatches
to the tools and the debugger; nothing else happens here.

Layer: face (imports everything below; nothing imports it).
"""
