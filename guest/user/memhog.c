// memhog pages=N passes=P procs=K: K processes of N pages each (together
// several times RAM) that every pass verify every page before rewriting it.
// A page holds its process, page number and pass generation, a pattern
// derived from them, and a checksum. Prints
//   memhog: pages=N passes=P mismatches=M
// and exits 0, or 1 if M > 0, or 2 if a worker failed (killed, no memory).
#include "user.h"
#include "pattern.h"

static int worker(unsigned long id, unsigned long n, unsigned long passes) {
  char *base = sbrk(0);
  if (sbrk(n * PGSIZE) == (char *)-1) {
    printf("memhog[%lu]: sbrk failed\n", id);
    return 255;
  }
  unsigned long mism = 0;
  for (unsigned long pass = 0; pass <= passes; pass++) {
    for (unsigned long i = 0; i < n; i++) {
      unsigned long *w = (unsigned long *)(base + i * PGSIZE);
      if (pass > 0 && bad(w, id, i, pass - 1)) {
        if (mism < 5)
          printf("memhog[%lu]: page %lu pass %lu: got proc %lx page %lu gen %lu\n", id, i,
                 pass, w[0], w[1], w[2]);
        mism++;
      }
      if (pass < passes)
        fill(w, id, i, pass);
    }
  }
  return mism > 250 ? 250 : (int)mism;
}

int main(int argc, char **argv) {
  const char *c = argval(argc, argv, "child");
  unsigned long n = argval(argc, argv, "pages") ? atol(argval(argc, argv, "pages")) : 1024;
  unsigned long passes = argval(argc, argv, "passes") ? atol(argval(argc, argv, "passes")) : 2;
  unsigned long procs = argval(argc, argv, "procs") ? atol(argval(argc, argv, "procs")) : 1;
  if (c)
    return worker(atol(c), n, passes);
  if (procs < 1 || procs > 16 || passes < 1) {
    printf("memhog: procs 1..16, passes >= 1\n");
    return 2;
  }
  long t0 = uptime();
  printf("memhog: %lu processes x %lu pages (%lu MiB), %lu passes\n", procs, n,
         procs * n / 256, passes);
  char pg[32], ps[32], id[32];
  snprintf(pg, sizeof pg, "pages=%lu", n);
  snprintf(ps, sizeof ps, "passes=%lu", passes);
  for (unsigned long k = 0; k < procs; k++) {
    snprintf(id, sizeof id, "child=%lu", k);
    char *av[] = {"memhog", id, pg, ps, 0};
    if (spawn("memhog", av) < 0) {
      printf("memhog: cannot spawn worker %lu\n", k);
      return 2;
    }
  }
  unsigned long mism = 0;
  int failed = 0, st;
  for (unsigned long k = 0; k < procs; k++) {
    if (wait(&st) < 0) {
      failed = 1;
      break;
    }
    if (st < 0 || st > 250)
      failed = 1;
    else
      mism += st;
  }
  long t1 = uptime();
  printf("memhog: pages=%lu passes=%lu mismatches=%lu\n", n, passes, mism);
  printf("memhog: %lu ms of virtual time%s\n", (t1 - t0) / 1000000,
         failed ? ", a worker failed" : "");
  return failed ? 2 : mism ? 1 : 0;
}
