// meminfo: free memory against the watermarks and the reserve tree (Linux:
// /proc/meminfo and Peter Zijlstra's /proc/reserve_info), the kernel's own
// memory by kind (what swap can never evict), then the processes. Exits 0,
// or 1 if the meminfo call fails.
#include "user.h"

static const char *const names[MI_NRESERVE] = {"swap_io", "aoe_tx", "aoe_rx"};
// FRAME_* of kstats.h, in the order printed: the kernel's own pages, then
// the rest. Index, name.
static const struct {
  int use;
  const char *name;
} kinds[] = {
    {10, "frame table"},   {3, "page tables"},   {5, "kernel heap"},   {4, "kernel stacks"},
    {8, "network buffers"}, {11, "swap map"},    {9, "kernel image"},  {7, "program images"},
    {1, "firmware, reserved"}, {2, "kernel, other"}, {6, "user"},      {0, "free"},
};

int main(void) {
  struct meminfo mi;
  if (meminfo(&mi) != 0) {
    printf("meminfo: call failed\n");
    return 1;
  }
  printf("MemTotal:  %8lu kB\n", mi.total * 4);
  printf("MemFree:   %8lu kB\n", mi.free * 4);
  printf("Watermarks: min %lu kB, low %lu kB, high %lu kB\n", mi.min * 4, mi.low * 4,
         mi.high * 4);
  if (mi.reserve_off) {
    printf("Reserves:  off (reserve=off)\n");
  } else {
    unsigned long use = 0, lim = 0;
    for (int r = 0; r < MI_NRESERVE; r++) {
      use += mi.reserve[r].usage;
      lim += mi.reserve[r].limit;
    }
    printf("Reserve (pages below min)   usage   peak  limit\n");
    printf("  total                    %6lu      - %6lu\n", use, lim);
    for (int r = 0; r < MI_NRESERVE; r++)
      printf("    %-22s %6lu %6lu %6lu%s\n", names[r], mi.reserve[r].usage, mi.reserve[r].peak,
             mi.reserve[r].limit,
             mi.reserve[r].limit && mi.reserve[r].usage >= mi.reserve[r].limit ? "  AT LIMIT"
                                                                                 : "");
  }
  printf("ReserveAllocs: %lu pages, denied %lu; PfmemallocDrop: %lu; Throttled: %lu\n",
         mi.reserve_allocs, mi.reserve_denied, mi.pfmemalloc_drop, mi.reclaim_throttled);
  // Pages by use, in hundredths of a percent of RAM (integer arithmetic).
  printf("Pages by use                pages   %% of RAM\n");
  for (unsigned long i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    unsigned long n = mi.use[kinds[i].use], bp = n * 10000 / mi.total;
    printf("  %-22s %9lu %6lu.%02lu\n", kinds[i].name, n, bp / 100, bp % 100);
  }
  for (unsigned long i = 0; i < mi.nproc; i++)
    printf("  pid %d %s rss %lu pages\n", mi.procs[i].pid, mi.procs[i].name, mi.procs[i].rss);
  return 0;
}
