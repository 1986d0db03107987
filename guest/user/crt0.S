# Program entry: the kernel starts us with a0 = argc, a1 = argv, sp below them.
.section .text.entry
.globl _start
_start:
    mv s0, zero          # end of the frame-pointer chain
    call main
    call exit
