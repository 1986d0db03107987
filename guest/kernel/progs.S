# The user programs embedded in the kernel image: each is the stripped ELF
# that guest/Makefile links at USER_BASE (build/user/NAME), included whole
# and page aligned, so that text pages can be mapped straight from here into
# processes (vm.c). progs[] is a struct prog (defs.h) per program: name,
# start, end. progimg_start/progimg_end bound the page-aligned images.
.macro prog name
    .section .rodata.progs, "a"
    .balign 4096
\name\()_start:
    .incbin "build/user/\name"
\name\()_end:
    .section .rodata.progname, "a"
\name\()_str:
    .asciz "\name"
    .section .rodata.progtab, "a"
    .balign 8
    .quad \name\()_str, \name\()_start, \name\()_end
.endm

    .section .rodata.progs, "a"
    .balign 4096
    .globl progimg_start
progimg_start:

    .section .rodata.progtab, "a"
    .balign 8
    .globl progs
progs:
    prog init
    prog hello
    prog forktest
    prog memtouch
    prog segv
    prog systest
    prog spin
    prog memhog
    prog meminfo
    prog swapoff
    prog swapon
    prog swapofftest
    prog morning
    .section .rodata.progs, "a"
    .balign 4096
    .globl progimg_end
progimg_end:

    .section .rodata.progtab, "a"
progs_end:
    .balign 8
    .globl nprogs
nprogs:
    .quad (progs_end - progs) / 24
