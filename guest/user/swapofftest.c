// swapofftest procs=K pages=N hog=H [free=F | take=T] [die=I] [again=1]:
// the workload of `emu experiment swapoff` and of the swapoff tests
// (docs/swapoff.md).
//  1. K workers (this program with child=I) fill N pages each with
//     memhog's pattern, then wait for a swapoff call to return (polling
//     every 5 ms, so they run and fault while it works);
//  2. `memhog pages=H passes=1` pushes them out to swap and exits;
//  3. with free=F this process takes memory until about F pages (at least
//     the high watermark) will be free once every page is back (Daniel
//     Drake's "not much free"); with take=T it takes T pages;
//  4. `swapoff` runs and prints its figures; with die=I worker I exits at
//     its first poll during the call (its pages are then simply freed);
//  5. each other worker verifies every page, prints a checksum of them and
//     exits with its mismatch count;
//  6. with again=1, `swapon`, and a memhog of H + K x N pages swaps again.
// Prints  swapofftest: procs=K pages=N out=U mismatches=M
// and exits 0, 1 on mismatches, 2 if a step failed, 6 without swap.
#include "user.h"
#include "pattern.h"

#define NOSWAP 6

static int worker(unsigned long id, unsigned long n, int die) {
  struct meminfo mi;
  if (meminfo(&mi) != 0)
    return 255;
  unsigned long before = mi.swapoffs;
  char *base = sbrk(n * PGSIZE);
  if (base == (char *)-1) {
    printf("swapofftest[%lu]: sbrk failed\n", id);
    return 255;
  }
  for (unsigned long i = 0; i < n; i++)
    fill((unsigned long *)(base + i * PGSIZE), id, i, 0);
  for (;;) {                 // (meminfo fails while memory is short: try again)
    if (meminfo(&mi) == 0 && mi.swapoffs != before)
      break;
    if (die && mi.swapoffs == before && !mi.swapon)
      exit(0);               // during the swapoff call: its pages go with it
    sleep(5);
  }
  unsigned long mism = 0, sum = 0;
  for (unsigned long i = 0; i < n; i++) {
    unsigned long *w = (unsigned long *)(base + i * PGSIZE);
    mism += bad(w, id, i, 0);
    sum = mix(sum ^ w[WORDS - 1] ^ i);
  }
  printf("swapofftest[%lu]: %lu pages, %lu mismatches, sum %lx\n", id, n, mism, sum);
  return mism > 250 ? 250 : (int)mism;
}

// Wait until every worker has filled its pages: N + 2 resident pages (its
// stack and text are in before its heap, so at most one page is left to
// fill then), and 20 ms more for that last page. Returns 0, or -1 if one
// has exited. (Not "asleep": the timer tick wakes every sleeper, so the
// pollers can stay in lockstep and never see each other asleep.)
static int ready(int *pids, unsigned long k, unsigned long n) {
  static struct meminfo mi;
  for (;;) {
    if (meminfo(&mi) != 0) {
      sleep(2);
      continue;
    }
    unsigned long done = 0;
    for (unsigned long w = 0; w < k; w++)
      for (unsigned long i = 0; i < mi.nproc; i++) {
        if (mi.procs[i].pid != pids[w])
          continue;
        if (mi.procs[i].state == PS_ZOMBIE)
          return -1;
        done += mi.procs[i].rss >= n + 2;
      }
    if (done == k) {
      sleep(20);
      return 0;
    }
    sleep(2);
  }
}

// The workers, and their exit statuses as they are reaped (-1000: not yet).
static int pids[16], status[16];
static unsigned long nworkers;

// Reap children until `pid` exits (0: until every worker has); a worker
// reaped meanwhile keeps its status. Returns pid's status, -1000 if none.
static int reap(int pid) {
  for (;;) {
    int st, w = wait(&st);
    if (w < 0)
      return -1000;
    for (unsigned long i = 0; i < nworkers; i++)
      if (pids[i] == w)
        status[i] = st;
    if (pid && w == pid)
      return st;
    unsigned long left = 0;
    for (unsigned long i = 0; i < nworkers; i++)
      left += status[i] == -1000;
    if (!pid && !left)
      return 0;
  }
}

// Run a command line (its own words, at most 95 characters) to the end.
static int step(const char *line) {
  char copy[96], *argv[8];
  int n = 0;
  strcpy(copy, line);
  for (char *p = copy; *p && n < 7;) {
    argv[n++] = p;
    while (*p && *p != ' ')
      p++;
    while (*p == ' ')
      *p++ = 0;
  }
  argv[n] = 0;
  int pid = spawn(argv[0], argv);
  int st = pid < 0 ? -1000 : reap(pid);
  if (st != 0)
    printf("swapofftest: '%s' exited with %d\n", line, st);
  return st;
}

int main(int argc, char **argv) {
  const char *c = argval(argc, argv, "child");
  unsigned long n = argval(argc, argv, "pages") ? atol(argval(argc, argv, "pages")) : 256;
  const char *die = argval(argc, argv, "die");
  if (c)
    return worker(atol(c), n, die != 0);
  unsigned long k = argval(argc, argv, "procs") ? atol(argval(argc, argv, "procs")) : 4;
  unsigned long hog = argval(argc, argv, "hog") ? atol(argval(argc, argv, "hog")) : 0;
  long free = argval(argc, argv, "free") ? atol(argval(argc, argv, "free")) : -1;
  long take = argval(argc, argv, "take") ? atol(argval(argc, argv, "take")) : -1;
  long dying = die ? atol(die) : -1;
  int again = argval(argc, argv, "again") != 0;
  if (k < 1 || k > 16 || n < 1 || hog < 1) {
    printf("swapofftest: procs 1..16, pages >= 1, hog >= 1\n");
    return 2;
  }
  static struct meminfo mi;
  if (meminfo(&mi) != 0 || !mi.swap) {
    printf("swapofftest: no swap device\n");
    return NOSWAP;
  }
  char pg[32], id[32], line[96];
  snprintf(pg, sizeof pg, "pages=%lu", n);
  for (unsigned long w = 0; w < k; w++) {
    snprintf(id, sizeof id, "child=%lu", w);
    char *av[] = {"swapofftest", id, pg, (long)w == dying ? "die=1" : 0, 0};
    if ((pids[w] = spawn("swapofftest", av)) < 0) {
      printf("swapofftest: cannot spawn worker %lu\n", w);
      return 2;
    }
    status[w] = -1000;
    nworkers = w + 1;
  }
  if (ready(pids, k, n) != 0) {
    printf("swapofftest: a worker failed\n");
    return 2;
  }
  printf("swapofftest: %lu workers hold %lu pages each\n", k, n);
  snprintf(line, sizeof line, "memhog pages=%lu passes=1", hog);
  if (step(line) != 0)
    return 2;
  meminfo(&mi);
  unsigned long out = mi.swap_used;
  printf("swapofftest: %lu pages out on swap, %lu free\n", out, mi.free);
  if (free >= 0 || take >= 0) {
    unsigned long want = (unsigned long)free < mi.high ? mi.high : (unsigned long)free;
    if (take < 0)
      take = mi.free > out + want ? mi.free - out - want : 0;
    char *b = take ? sbrk(take * PGSIZE) : 0;
    if (b == (char *)-1) {
      printf("swapofftest: sbrk failed\n");
      return 2;
    }
    for (long i = 0; i < take; i++)
      b[i * PGSIZE] = 1;
    meminfo(&mi);
    printf("swapofftest: took %ld pages: %lu free, %lu out\n", take, mi.free, mi.swap_used);
  }
  int bad = step("swapoff") != 0;
  unsigned long mism = 0;
  reap(0);
  for (unsigned long w = 0; w < k; w++) {
    if (status[w] < 0 || status[w] > 250)
      bad = 1;
    else
      mism += status[w];
  }
  if (again && !bad) {
    snprintf(line, sizeof line, "memhog pages=%lu passes=1", hog + k * n);
    bad = step("swapon") != 0 || step(line) != 0;
  }
  printf("swapofftest: procs=%lu pages=%lu out=%lu mismatches=%lu\n", k, n, out, mism);
  return bad ? 2 : mism ? 1 : 0;
}
