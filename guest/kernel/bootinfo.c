// The boot-info block the firmware leaves at a1 (see emu/machine/bootinfo.py).
#include "types.h"
#include "memlayout.h"
#include "defs.h"

struct bootinfo *bootinfo;
const char *cmdline;

void bootinfo_init(uint64 addr) {
  bootinfo = (struct bootinfo *)addr;
  if (bootinfo->magic != BOOTINFO_MAGIC)
    panic("bootinfo_init: bad magic");
  cmdline = (const char *)(addr + BOOTINFO_CMDLINE_OFF);
}
