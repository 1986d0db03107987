"""What the tools know about the guest: its image's symbols and DWARF line
table, and our kernel's own structures (kstats, the process table, page
ownership, swap and reserve state) and the NIC's rings, read from guest
memory without side effects. Below both the debugger and the other tools.

Layer: guestview (imports the machine and below).
"""
