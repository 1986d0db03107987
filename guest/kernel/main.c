// Boot: the device tree, console, boot parameters, the frame table and
// watermarks, the kernel's page table, traps; then the first process -
// init, or the in-kernel tests as a kernel thread - and the scheduler.
#include "types.h"
#include "riscv.h"
#include "mm.h"
#include "defs.h"

struct kstats kstats;  // read by the host after the run (emu/guestview/kstats.py)
extern char end[];

static void sbi_puts(const char *s) {
  while (*s)
    sbi_putchar(*s++);
}

static void startinit(void) {
  char *argv[MAXARG + 1] = {"init"};
  for (int i = 0; i < params.initargc; i++)
    argv[i + 1] = params.initargv[i];
  printf("boot: starting init");
  for (int i = 1; argv[i]; i++)
    printf(" %s", argv[i]);
  printf("\n");
  if (spawn("init", argv) < 0)
    panic("main: cannot start init");
}

// The firmware enters here (entry.S) in S-mode, paging off, with a0 = our
// hart id and a1 = the physical address of the flattened device tree.
void main(uint64 hartid, uint64 dtb) {
  sbi_puts("emu: hello from S-mode through the SBI console\n");
  platforminit(hartid, dtb);
  uartinit(platform.uart.base);
  printf("emu kernel: hart %d, RAM %p + %d MiB, SBI v%d.%d\n", (int)hartid,
         platform.ram_base, (int)(platform.ram_size >> 20),
         (int)(sbi_spec_version() >> 24), (int)(sbi_spec_version() & 0xffffff));
  platformprint();
  printf("cmdline: '%s'\n", platform.bootargs);
  kstats.magic = KSTATS_MAGIC;
  kstats.version = KSTATS_VERSION;
  paraminit(platform.bootargs);
  if (params.panic)
    panic("main: panic requested on the command line");
  if (params.tick_us)
    tick_ns = params.tick_us * 1000;

  uint64 ramend = platform.ram_base + platform.ram_size;
  kinit((uint64)end, params.min_free_kb);
  printf("kalloc: %d of %d pages free; watermarks min %d low %d high %d pages\n",
         (int)nfree(), (int)kstats.pages_total, (int)wmark.min, (int)wmark.low,
         (int)wmark.high);
  kmallocinit();
  kvminit(ramend);
  vmswitch(kernel_pagetable);
  printf("vm: Sv39 on, satp %p\n", csr_read(satp));
  trapinit();
  plicinit();
  syscallinit();

  if (!params.test)
    netinit();   // says why on the console if there is no network
  if (params.test) {
    if (kthread("ktest", ktest) < 0)
      panic("main: cannot start ktest");
  } else {
    startinit();
    swapinit();
  }
  scheduler();
}
