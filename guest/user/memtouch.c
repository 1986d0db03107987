// memtouch: `memtouch pages=N` allocates N pages, writes a pattern to every
// word, reads it all back, and prints one result line. Exits 0 if every
// word held its pattern, 1 otherwise (2 if the memory could not be had).
#include "user.h"

static unsigned long pattern(unsigned long page, unsigned long word) {
  return (page << 32 | word) ^ 0x9e3779b97f4a7c15UL;
}

static void mem(unsigned long *freep, unsigned long *rss) {
  struct meminfo mi;
  *freep = *rss = 0;
  if (meminfo(&mi) != 0)
    return;
  *freep = mi.free;
  for (unsigned long i = 0; i < mi.nproc; i++)
    if (mi.procs[i].pid == getpid())
      *rss = mi.procs[i].rss;
}

int main(int argc, char **argv) {
  const char *arg = argval(argc, argv, "pages");
  long n = arg ? atol(arg) : 256;
  if (n < 1) {
    printf("memtouch: pages must be positive\n");
    return 2;
  }
  unsigned long free0, rss0, free1, rss1;
  mem(&free0, &rss0);
  long t0 = uptime();
  unsigned long *m = malloc(n * PGSIZE);
  if (!m) {
    printf("memtouch: cannot allocate %ld pages\n", n);
    return 2;
  }
  const unsigned long words = PGSIZE / sizeof *m;
  for (long p = 0; p < n; p++)
    for (unsigned long w = 0; w < words; w++)
      m[p * words + w] = pattern(p, w);
  long bad = 0;
  for (long p = 0; p < n; p++)
    for (unsigned long w = 0; w < words; w++)
      bad += m[p * words + w] != pattern(p, w);
  mem(&free1, &rss1);
  long us = (uptime() - t0) / 1000;
  if (bad) {
    printf("memtouch: %ld of %ld pages: %ld words wrong\n", n, n, bad);
    return 1;
  }
  printf("memtouch: %ld pages touched and verified in %ld us; rss %lu -> %lu, free %lu -> %lu\n",
         n, us, rss0, rss1, free0, free1);
  return 0;
}
