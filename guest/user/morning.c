// morning ws=W batch=B night=MS [touch=0] [trace=1]: "the morning after" (Con
// Kolivas' case for swap prefetch; docs/prefetch.md). This process is the
// interactive program:
//  1. it fills a working set of W pages with memhog's pattern;
//  2. `memhog pages=B passes=1`, the night's batch job, pushes it out to
//     swap and exits;
//  3. the night: MS ms of virtual time with nothing to do;
//  4. the morning: it touches its working set again, page by page, timing
//     each touch, then verifies every page (with touch=0 it never comes
//     back: what prefetch read for it was wasted).
// Prints
//   morning: ws=W rss=R free=F at night, touched in T us: faults major M minor m;
//            latency median X ns, p99 Y ns, max Z ns; mismatches K
// (one line) and exits 0, 1 on mismatches, 2 if a step failed. With trace=1
// it first prints each touch that took 5 us or more (a fault that waited):
//   morning: slow touch at T ns: page I, L ns
#include "user.h"
#include "pattern.h"

// The process's own entry in a meminfo record, or 0.
static struct procinfo *self(struct meminfo *mi) {
  int pid = getpid();
  for (unsigned long i = 0; i < mi->nproc; i++)
    if (mi->procs[i].pid == pid)
      return &mi->procs[i];
  return 0;
}

// Shell sort, ascending.
static void sort(unsigned long *a, unsigned long n) {
  for (unsigned long gap = n / 2; gap > 0; gap /= 2)
    for (unsigned long i = gap; i < n; i++)
      for (unsigned long j = i; j >= gap && a[j - gap] > a[j]; j -= gap) {
        unsigned long t = a[j];
        a[j] = a[j - gap];
        a[j - gap] = t;
      }
}

int main(int argc, char **argv) {
  unsigned long ws = argval(argc, argv, "ws") ? atol(argval(argc, argv, "ws")) : 512;
  unsigned long batch = argval(argc, argv, "batch") ? atol(argval(argc, argv, "batch")) : 0;
  long night = argval(argc, argv, "night") ? atol(argval(argc, argv, "night")) : 5000;
  int touch = !argval(argc, argv, "touch") || atol(argval(argc, argv, "touch")) != 0;
  int trace = argval(argc, argv, "trace") && atol(argval(argc, argv, "trace")) != 0;
  if (ws < 1 || batch < 1 || night < 0) {
    printf("morning: ws >= 1, batch >= 1, night >= 0\n");
    return 2;
  }
  static struct meminfo mi;
  char *base = sbrk(ws * PGSIZE);
  unsigned long tsize = ((ws * 8 + PGSIZE - 1) / PGSIZE) * PGSIZE;
  unsigned long *lat = (unsigned long *)sbrk(tsize), *at = (unsigned long *)sbrk(tsize);
  if (base == (char *)-1 || lat == (unsigned long *)-1 || at == (unsigned long *)-1) {
    printf("morning: sbrk failed\n");
    return 2;
  }
  for (unsigned long i = 0; i < ws; i++)
    fill((unsigned long *)(base + i * PGSIZE), 0, i, 0);
  for (unsigned long i = 0; i < ws; i++)   // the timing arrays are resident too
    lat[i] = at[i] = 0;
  char pages[32];
  snprintf(pages, sizeof pages, "pages=%lu", batch);
  char *av[] = {"memhog", pages, "passes=1", 0};
  if (run("memhog", av) != 0) {
    printf("morning: the batch job failed\n");
    return 2;
  }
  struct procinfo *me;
  if (meminfo(&mi) != 0 || !(me = self(&mi))) {
    printf("morning: meminfo failed\n");
    return 2;
  }
  unsigned long resident = me->rss, free = mi.free;
  sleep(night);
  if (!touch) {
    printf("morning: ws=%lu rss=%lu free=%lu at night; not touched\n", ws, resident, free);
    return 0;
  }
  meminfo(&mi);
  unsigned long maj0 = self(&mi)->majflt, min0 = self(&mi)->minflt;
  long t0 = uptime();
  for (unsigned long i = 0; i < ws; i++) {
    long a = uptime();
    (void)*(volatile unsigned long *)(base + i * PGSIZE);
    lat[i] = uptime() - a;
    at[i] = a;
  }
  long t1 = uptime();
  for (unsigned long i = 0; trace && i < ws; i++)
    if (lat[i] >= 5000)
      printf("morning: slow touch at %lu ns: page %lu, %lu ns\n", at[i], i, lat[i]);
  meminfo(&mi);
  unsigned long maj = self(&mi)->majflt - maj0, min = self(&mi)->minflt - min0;
  unsigned long mism = 0;
  for (unsigned long i = 0; i < ws; i++)
    mism += bad((unsigned long *)(base + i * PGSIZE), 0, i, 0);
  sort(lat, ws);
  printf("morning: ws=%lu rss=%lu free=%lu at night, touched in %lu us: faults major %lu "
         "minor %lu; latency median %lu ns, p99 %lu ns, max %lu ns; mismatches %lu\n",
         ws, resident, free, (t1 - t0) / 1000, maj, min, lat[ws / 2], lat[ws - 1 - ws / 100],
         lat[ws - 1], mism);
  return mism ? 1 : 0;
}
