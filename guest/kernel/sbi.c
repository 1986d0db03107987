// Calls into the firmware (RISC-V SBI spec v2.0): emu's built-in one, or
// OpenSBI on QEMU. Only what OpenSBI 1.x provides: base, TIME, SRST and the
// legacy console putchar.
#include "types.h"
#include "defs.h"

#define EXT_BASE 0x10
#define EXT_TIME 0x54494D45
#define EXT_SRST 0x53525354
#define LEGACY_PUTCHAR 0x01

struct sbiret { long error; long value; };

static struct sbiret sbi_call(long ext, long fid, long a0, long a1) {
  register long r_a0 asm("a0") = a0;
  register long r_a1 asm("a1") = a1;
  register long r_a6 asm("a6") = fid;
  register long r_a7 asm("a7") = ext;
  asm volatile("ecall" : "+r"(r_a0), "+r"(r_a1) : "r"(r_a6), "r"(r_a7) : "memory");
  return (struct sbiret){r_a0, r_a1};
}

void sbi_putchar(int c) { sbi_call(LEGACY_PUTCHAR, 0, c, 0); }

// Program the next timer interrupt for when the time CSR reaches `stime`
// (timebase units: time.c converts); this also clears a pending one.
void sbi_set_timer(uint64 stime) { sbi_call(EXT_TIME, 0, stime, 0); }

long sbi_spec_version(void) { return sbi_call(EXT_BASE, 0, 0, 0).value; }

// Returns non-zero if the firmware implements extension `ext`.
long sbi_probe(long ext) { return sbi_call(EXT_BASE, 3, ext, 0).value; }

// Power off. reason 0 = clean, 1 = failure, 0xF0000000+n = exit status n
// (a platform-specific reason emu's firmware takes). OpenSBI 1.x refuses
// reasons other than 0 and 1: then it is asked again with 1.
void sbi_shutdown(uint32 reason) {
  sbi_call(EXT_SRST, 0, 0, reason);
  if (reason > 1)
    sbi_call(EXT_SRST, 0, 0, 1);
  for (;;)
    asm volatile("wfi");
}
