# System call stubs: number in a7, arguments already in a0..a5, result in a0.
#include "../kernel/syscall.h"

.macro stub name, num
    .globl \name
\name:
    li a7, \num
    ecall
    ret
.endm

.section .text
    stub write, SYS_write
    stub exit, SYS_exit
    stub wait, SYS_wait
    stub getpid, SYS_getpid
    stub sbrk, SYS_sbrk
    stub yield, SYS_yield
    stub sleep, SYS_sleep
    stub spawn, SYS_spawn
    stub uptime, SYS_uptime
    stub meminfo, SYS_meminfo

# long syscall(n, a0, a1, a2)
    .globl syscall
syscall:
    mv a7, a0
    mv a0, a1
    mv a1, a2
    mv a2, a3
    ecall
    ret
