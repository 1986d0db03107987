// Boot: the first guest proves the machine. It prints through the SBI and
// the UART, builds a direct-mapped kernel page table and turns Sv39 on,
// takes timer interrupts, runs a U-mode routine that makes a system call and
// takes a page fault the kernel resolves, then powers off with status 0.
#include "types.h"
#include "riscv.h"
#include "memlayout.h"
#include "defs.h"

extern char end[];
extern char userdemo_start[], userdemo_end[];

#define USER_TEXT 0x400000UL

pagetable_t user_pagetable;
static uint64 boot_time;

static void sbi_puts(const char *s) {
  while (*s)
    sbi_putchar(*s++);
}

static int has_word(const char *s, const char *w) {
  uint64 n = strlen(w);
  for (const char *p = s; *p; p++)
    if ((p == s || p[-1] == ' ') && strncmp(p, w, n) == 0 && (p[n] == 0 || p[n] == ' '))
      return 1;
  return 0;
}

// Copy the kernel page table's top level into a fresh one (sharing the
// kernel's lower levels) and add the user text page.
static void user_setup(void) {
  user_pagetable = kalloc();
  if (!user_pagetable)
    panic("user_setup");
  memcpy(user_pagetable, kernel_pagetable, PGSIZE);
  void *text = kalloc();
  if (!text)
    panic("user_setup: text");
  memcpy(text, userdemo_start, userdemo_end - userdemo_start);
  if (mappages(user_pagetable, USER_TEXT, PGSIZE, (uint64)text, PTE_U | PTE_R | PTE_X) != 0)
    panic("user_setup: map");
  sfence_vma();
  csr_write(satp, MAKE_SATP(user_pagetable));
  sfence_vma();
}

void user_exited(long code) {
  printf("user: exited with %d\n", (int)code);
  printf("boot: %d timer ticks, %d free pages, %d ns of virtual time\n", (int)ticks,
         (int)kfreepages(), (int)(rdtime() - boot_time));
  if (code != 0)
    panic("user_exited: user demo failed");
  printf("boot: all good, powering off\n");
  sbi_shutdown(0);
}

void main(uint64 hartid, uint64 bootinfo_addr) {
  bootinfo_init(bootinfo_addr);
  boot_time = rdtime();
  sbi_puts("emu: hello from S-mode through the SBI console\n");
  uartinit();
  printf("emu kernel: hart %d, RAM %p + %d MiB, SBI v%d.%d\n", (int)hartid,
         bootinfo->ram_base, (int)(bootinfo->ram_size >> 20),
         (int)(sbi_spec_version() >> 24), (int)(sbi_spec_version() & 0xffffff));
  printf("cmdline: '%s'\n", cmdline);
  if (has_word(cmdline, "panic"))
    panic("main: panic requested on the command line");

  kinit((uint64)end, bootinfo->ram_base + bootinfo->ram_size);
  printf("kalloc: %d free pages\n", (int)kfreepages());
  kvminit();
  kvminithart();
  printf("vm: Sv39 on, satp %p\n", csr_read(satp));

  trapinit();
  csr_set(sie, SIE_STIE);
  timer_arm();
  intr_on();
  while (ticks < 3)
    wfi();
  printf("timer: %d ticks\n", (int)ticks);

  user_setup();
  printf("user: entering U-mode at %p\n", USER_TEXT);
  void *kstack = kalloc();
  if (!kstack)
    panic("main: kernel stack");
  intr_off();
  usertrapret_first(USER_TEXT, (uint64)kstack + PGSIZE);
}
