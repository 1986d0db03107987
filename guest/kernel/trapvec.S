# The one trap vector (stvec, direct mode). Convention: sscratch holds the
# kernel stack top while the hart runs in U-mode and 0 while it runs in S,
# so the first instruction tells where the trap came from (as Linux does).
# A struct trapframe (trap.h) is built on the kernel stack.

#define TF_SIZE 288

.section .text
.globl trapvec
.align 4
trapvec:
    csrrw sp, sscratch, sp     # from U: sp = kstack, sscratch = user sp
    bnez sp, 1f
    csrrw sp, sscratch, sp     # from S: undo; sp = kernel sp, sscratch = 0
1:  addi sp, sp, -TF_SIZE
    sd ra, 8(sp)
    sd gp, 24(sp)
    sd tp, 32(sp)
    sd t0, 40(sp)
    sd t1, 48(sp)
    sd t2, 56(sp)
    sd s0, 64(sp)
    sd s1, 72(sp)
    sd a0, 80(sp)
    sd a1, 88(sp)
    sd a2, 96(sp)
    sd a3, 104(sp)
    sd a4, 112(sp)
    sd a5, 120(sp)
    sd a6, 128(sp)
    sd a7, 136(sp)
    sd s2, 144(sp)
    sd s3, 152(sp)
    sd s4, 160(sp)
    sd s5, 168(sp)
    sd s6, 176(sp)
    sd s7, 184(sp)
    sd s8, 192(sp)
    sd s9, 200(sp)
    sd s10, 208(sp)
    sd s11, 216(sp)
    sd t3, 224(sp)
    sd t4, 232(sp)
    sd t5, 240(sp)
    sd t6, 248(sp)
    csrrw t0, sscratch, zero   # the interrupted sp (0 if it was S-mode)
    bnez t0, 2f
    addi t0, sp, TF_SIZE
2:  sd t0, 16(sp)
    csrr t0, sepc
    sd t0, 256(sp)
    csrr t0, sstatus
    sd t0, 264(sp)
    csrr t0, scause
    sd t0, 272(sp)
    csrr t0, stval
    sd t0, 280(sp)
    mv a0, sp
    call trap

.globl trapret
trapret:                        # a0 = trapframe
    mv sp, a0
    ld t0, 256(sp)
    csrw sepc, t0
    ld t0, 264(sp)
    csrw sstatus, t0
    andi t0, t0, 0x100          # SPP: back to S?
    bnez t0, 3f
    addi t0, sp, TF_SIZE        # back to U: remember the kernel stack top
    csrw sscratch, t0
3:  ld ra, 8(sp)
    ld gp, 24(sp)
    ld tp, 32(sp)
    ld t0, 40(sp)
    ld t1, 48(sp)
    ld t2, 56(sp)
    ld s0, 64(sp)
    ld s1, 72(sp)
    ld a0, 80(sp)
    ld a1, 88(sp)
    ld a2, 96(sp)
    ld a3, 104(sp)
    ld a4, 112(sp)
    ld a5, 120(sp)
    ld a6, 128(sp)
    ld a7, 136(sp)
    ld s2, 144(sp)
    ld s3, 152(sp)
    ld s4, 160(sp)
    ld s5, 168(sp)
    ld s6, 176(sp)
    ld s7, 184(sp)
    ld s8, 192(sp)
    ld s9, 200(sp)
    ld s10, 208(sp)
    ld s11, 216(sp)
    ld t3, 224(sp)
    ld t4, 232(sp)
    ld t5, 240(sp)
    ld t6, 248(sp)
    ld sp, 16(sp)
    sret
