"""The fault debugger (`emu debug`) and the GDB stub (`emu run|debug -s`).

Layout, one job per module:

- control.py   Controller: one machine, run slice by slice; its parts
               breakpoints.py (code, watch, fault), stepping.py, replay.py;
               stops.py (Stop, Breakpoint, DebugError)
- faults.py    fault descriptions, `break fault` filters, exact access addresses
- commands.py  THE command table, shared by the REPL and gdb's `monitor`
- gdbcmds.py   the gdb habits (print, x, display, info registers/breakpoints) over
               expr.py (gdb's expressions), valfmt.py (gdb's value formats),
               examine.py (x), printcmd.py (print, display), reginfo.py, bpinfo.py
- tlbinfo.py   `info tlb`: the soft TLB probed, checked against the page table
- complete.py  tab completion for the REPL
- context.py   the context view shown at every stop
- repl.py      the command loop of `emu debug`
- rsp.py       GDB remote serial protocol codec (framing, checksums, escapes)
- gdbstub.py   the GDB server built on rsp.py and the Controller
- gdbregs.py   register numbering and target.xml for gdb
- vmem.py      side-effect-free reads/writes by virtual or physical address
- infomem.py   QEMU-format `info mem`
- disasm.py    capstone disassembly with symbols
- frames.py    frame-pointer backtrace across trap boundaries
- main.py      `emu debug` and `emu run -s`: the debugger and the gdb-served run

What the debugger knows about the guest (symbols, DWARF, our kernel's
structures: kview, kproc, ktypes, swap, reserves, the NIC) lives one layer
down, in emu/guestview/. See docs/debugging.md for a walk-through.

Layer: debug (above the tools it uses: flags, session, report).
"""
