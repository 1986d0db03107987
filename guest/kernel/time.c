// Time. The time CSR counts at the timebase frequency the device tree gives
// (/cpus timebase-frequency: 10 MHz on QEMU's virt). The kernel keeps every
// time in nanoseconds - sleep deadlines, the AoE timers, uptime(), the
// kstats figures - and converts only at the edges: now_ns() reads the
// clock, ns2tb() turns a deadline into what SBI set_timer takes.
#include "types.h"
#include "riscv.h"
#include "defs.h"

#define NS 1000000000UL

// tb timebase units in ns, rounded down. Split so that nothing overflows
// for any 32-bit timebase: (tb % hz) * NS < 2^32 * 10^9 < 2^64.
uint64 tb2ns(uint64 tb) {
  uint64 hz = platform.timebase_hz;
  return tb / hz * NS + tb % hz * NS / hz;
}

// ns in timebase units, rounded up: a timer set for ns2tb(t) fires when
// now_ns() >= t, never a unit early.
uint64 ns2tb(uint64 ns) {
  uint64 hz = platform.timebase_hz;
  return ns / NS * hz + (ns % NS * hz + NS - 1) / NS;
}

// The time since the machine started, in ns.
uint64 now_ns(void) { return tb2ns(rdtime()); }
