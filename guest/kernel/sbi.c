// Calls into the firmware (RISC-V SBI spec v2.0). The emulator plays M-mode.
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

// Program the next timer interrupt at absolute time `when` (ns of virtual time).
void sbi_set_timer(uint64 when) { sbi_call(EXT_TIME, 0, when, 0); }

long sbi_spec_version(void) { return sbi_call(EXT_BASE, 0, 0, 0).value; }

// Returns non-zero if the firmware implements extension `ext`.
long sbi_probe(long ext) { return sbi_call(EXT_BASE, 3, ext, 0).value; }

// Power off. reason 0 = clean, 1 = failure, 0xF0000000+n = exit status n.
void sbi_shutdown(uint32 reason) {
  sbi_call(EXT_SRST, 0, 0, reason);
  for (;;)
    asm volatile("wfi");
}
