// What the kernel takes from the device tree at boot (fdt.c reads it), as
// Linux and xv6-on-OpenSBI kernels do: RAM (/memory reg), the command line
// (/chosen bootargs), the timebase (/cpus timebase-frequency), the UART
// (compatible "ns16550a": reg, interrupts), the PLIC ("riscv,plic0" or
// "sifive,plic-1.0.0": reg, riscv,ndev, and which of its contexts is our
// hart's S-mode one), emu's eNIC ("emu,enic": reg, interrupts) when there is
// one, and the memory nobody may allocate (the tree itself, its
// memory-reservation block, /reserved-memory). Filled once, before anything
// else runs, into `platform`; the tree stays where the firmware put it.
#include "types.h"
#include "riscv.h"
#include "memlayout.h"
#include "defs.h"

struct platform platform;

// Returns 1 if the string property `name` of `node` is exactly `value`.
static int propis(int node, const char *name, const char *value) {
  int len;
  const char *v = fdt_getprop(node, name, &len);
  return v && len == (int)strlen(value) + 1 && strncmp(v, value, len) == 0;
}

// The first RAM range: reg of a node with device_type "memory" that holds
// the kernel. Panics if there is none.
static void findram(void) {
  int depth = 0;
  for (int n = fdt_next_node(-1, &depth); n >= 0; n = fdt_next_node(n, &depth)) {
    if (!propis(n, "device_type", "memory"))
      continue;
    uint64 base, size;
    for (int i = 0; fdt_reg(n, i, &base, &size) == 0; i++) {
      if (base <= KERNEL_BASE && KERNEL_BASE < base + size) {
        platform.ram_base = base;
        platform.ram_size = size;
        return;
      }
    }
  }
  panic("platform: no /memory range in the device tree holds the kernel");
}

// Copy /chosen bootargs (the -append string) into platform.bootargs; none
// is an empty line, a longer one is cut (and says so).
static void findbootargs(int root) {
  int len;
  const char *s = fdt_getprop(fdt_subnode(root, "chosen"), "bootargs", &len);
  if (!s || len < 1)
    return;
  if ((uint64)len > sizeof platform.bootargs) {
    printf("platform: bootargs longer than %d bytes, cut\n", (int)sizeof platform.bootargs - 1);
    len = sizeof platform.bootargs;
  }
  memcpy(platform.bootargs, s, len - 1);
  platform.bootargs[len - 1] = 0;
}

// The phandle of the interrupt controller (riscv,cpu-intc) of the cpu node
// under /cpus whose reg is `hartid`, or 0 if there is none.
static uint32 hartintc(int cpus, uint64 hartid) {
  int depth = 0;
  for (int n = fdt_next_node(cpus, &depth); n >= 0 && depth > 0; n = fdt_next_node(n, &depth)) {
    uint64 reg, size;
    if (depth != 1 || !propis(n, "device_type", "cpu") || fdt_reg(n, 0, &reg, &size) != 0 ||
        reg != hartid)
      continue;
    int intc = fdt_subnode(n, "interrupt-controller");
    return fdt_is_compatible(intc, "riscv,cpu-intc") ? fdt_getu32(intc, "phandle", 0) : 0;
  }
  return 0;
}

// The PLIC context wired to our hart's supervisor external interrupt: the
// index of the (controller, cause) entry of the PLIC's interrupts-extended
// whose controller is our hart's and whose cause is 9 (S external; OpenSBI
// turns the M-mode entries' 11 into -1, which changes no index). Each
// entry is a phandle and that controller's #interrupt-cells cells.
// Returns -1 if there is no such entry.
static int splicctx(int plic, uint32 intc) {
  int len;
  const uint8 *v = fdt_getprop(plic, "interrupts-extended", &len);
  if (!v || !intc)
    return -1;
  int ctx = 0;
  for (int at = 0; at + 8 <= len; ctx++) {
    uint32 ph = fdt32(v + at);
    uint32 cells = fdt_getu32(fdt_find_phandle(ph), "#interrupt-cells", 0);
    if (cells < 1)
      return -1;   // a controller we cannot size: the indexes after it are unknown
    if (ph == intc && fdt32(v + at + 4) == IRQ_S_EXT)
      return ctx;
    at += 4 * (1 + cells);
  }
  return -1;
}

// reg and interrupts of the first node compatible with `compat`: 0, or -1
// if there is none (or it has no reg).
static int finddev(const char *compat, struct platdev *d) {
  int n = fdt_find_compatible(-1, compat);
  if (n < 0 || fdt_reg(n, 0, &d->base, &d->size) != 0)
    return -1;
  d->irq = fdt_getu32(n, "interrupts", 0);
  return 0;
}

// Add [base, base+size) to the ranges kalloc must not hand out.
static void reserve(uint64 base, uint64 size) {
  if (platform.nresv == NRESV)
    panic("platform: more reserved memory ranges than NRESV");
  platform.resv[platform.nresv].base = base;
  platform.resv[platform.nresv].size = size;
  platform.nresv++;
}

// The reserved ranges: the tree itself, its memory-reservation block and
// every reg of the children of /reserved-memory.
static void findreserved(int root) {
  uint64 base, size;
  reserve(platform.fdt, fdt_totalsize());
  for (int i = 0; fdt_memreserve(i, &base, &size) == 0; i++)
    reserve(base, size);
  int rm = fdt_subnode(root, "reserved-memory"), depth = 0;
  if (rm < 0)
    return;
  for (int n = fdt_next_node(rm, &depth); n >= 0 && depth > 0; n = fdt_next_node(n, &depth))
    for (int i = 0; depth == 1 && fdt_reg(n, i, &base, &size) == 0; i++)
      reserve(base, size);
}

// Read the tree at physical address `dtb` (a1 at entry; we run with paging
// off) into `platform`. Panics, through the SBI console (the UART is not
// known yet), if there is no valid tree or it lacks RAM, the timebase, the
// UART or the PLIC with an S-mode context for hart `hartid`.
void platforminit(uint64 hartid, uint64 dtb) {
  if (dtb == 0 || dtb % 8 || fdt_init((const void *)dtb) != 0) {
    printf("platform: a1 = %p is not a flattened device tree (DTB version 17)\n", dtb);
    panic("platform: no device tree");
  }
  platform.hartid = hartid;
  platform.fdt = dtb;
  int depth = 0, root = fdt_next_node(-1, &depth);
  findram();
  findbootargs(root);
  int cpus = fdt_subnode(root, "cpus");
  platform.timebase_hz = fdt_getu32(cpus, "timebase-frequency", 0);
  if (platform.timebase_hz == 0)
    panic("platform: no /cpus timebase-frequency in the device tree");
  if (finddev("ns16550a", &platform.uart) != 0)
    panic("platform: no ns16550a UART in the device tree");
  int plic = fdt_find_compatible(-1, "sifive,plic-1.0.0");
  if (plic < 0)
    plic = fdt_find_compatible(-1, "riscv,plic0");
  if (plic < 0 || fdt_reg(plic, 0, &platform.plic.base, &platform.plic.size) != 0)
    panic("platform: no PLIC (riscv,plic0) in the device tree");
  platform.plic.ndev = fdt_getu32(plic, "riscv,ndev", 0);
  platform.plic.ctx = splicctx(plic, hartintc(cpus, hartid));
  if (platform.plic.ctx < 0)
    panic("platform: the PLIC has no S-mode context for this hart");
  if (finddev("emu,enic", &platform.enic) == 0 &&
      (platform.enic.irq == 0 || platform.enic.irq > platform.plic.ndev))
    panic("platform: the eNIC's interrupt is not a PLIC source");
  findreserved(root);
}

// One line per thing found, for the boot log.
void platformprint(void) {
  printf("dt: timebase %d Hz; uart 0x%lx irq %d; plic 0x%lx, %d sources, S context %d\n",
         (int)platform.timebase_hz, platform.uart.base, (int)platform.uart.irq,
         platform.plic.base, (int)platform.plic.ndev, platform.plic.ctx);
  if (platform.enic.base)
    printf("dt: eNIC 0x%lx irq %d\n", platform.enic.base, (int)platform.enic.irq);
  else
    printf("dt: no eNIC\n");
  for (int i = 0; i < platform.nresv; i++)
    printf("dt: reserved 0x%lx + 0x%lx\n", platform.resv[i].base, platform.resv[i].size);
}
