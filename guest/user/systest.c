// systest: checks system call semantics from user mode. `systest MODE`:
//   syscalls  every call's normal results and error returns
//   badptr    bad user pointers make calls fail with -1, the caller survives
//   args A..  argv arrives intact (argv[2..] must be A..)
// Prints "systest: MODE ok" and exits 0, or names the failed check and exits 1.
#include "user.h"

static int failed;

#define CHECK(c)                                                     \
  do {                                                               \
    if (!(c)) {                                                      \
      printf("systest: line %d: check failed: %s\n", __LINE__, #c);  \
      failed = 1;                                                    \
    }                                                                \
  } while (0)

static char *kernelptr = (char *)0x80200000UL;

static int syscalls(void) {
  CHECK(getpid() > 1);
  CHECK(write(1, "", 0) == 0);
  CHECK(write(3, "x", 1) == -1);
  CHECK(write(1, "x", -1) == -1);
  CHECK(syscall(0, 0, 0, 0) == -1);
  CHECK(syscall(99, 0, 0, 0) == -1);
  CHECK(yield() == 0);

  char *brk = sbrk(0);
  CHECK(brk != (char *)-1);
  CHECK(sbrk(3 * PGSIZE) == brk);
  CHECK(sbrk(0) == brk + 3 * PGSIZE);
  for (char *p = brk; p < brk + 3 * PGSIZE; p += 512)
    CHECK(*p == 0);
  brk[3 * PGSIZE - 1] = 7;
  CHECK(sbrk(-3 * PGSIZE) == brk + 3 * PGSIZE);
  CHECK(sbrk(0) == brk);
  CHECK(sbrk(1L << 40) == (char *)-1);
  CHECK(sbrk(-(1L << 40)) == (char *)-1);
  CHECK(sbrk(PGSIZE) == brk);  // pages come back zeroed after a shrink
  CHECK(brk[PGSIZE - 1] == 0);
  CHECK(sbrk(-PGSIZE) == brk + PGSIZE);

  long t0 = uptime();
  CHECK(t0 > 0);
  CHECK(sleep(3) == 0);
  CHECK(uptime() - t0 >= 3000000);
  CHECK(sleep(-1) == -1);
  CHECK(sleep(1L << 62) == -1);

  struct meminfo mi;
  CHECK(meminfo(&mi) == 0);
  CHECK(mi.total > mi.free && mi.free > mi.high && mi.high > mi.low && mi.low > mi.min);
  int found = 0;
  for (unsigned long i = 0; i < mi.nproc; i++)
    if (mi.procs[i].pid == getpid())
      found = mi.procs[i].rss > 0 && strcmp(mi.procs[i].name, "systest") == 0;
  CHECK(found);

  char *noargs[] = {"nosuch", 0};
  CHECK(spawn("nosuch", noargs) == -1);
  CHECK(wait(0) == -1);
  char *hello[] = {"hello", "from", "systest", 0};
  int pid = spawn("hello", hello), st = -5;
  CHECK(pid > 0);
  CHECK(wait(&st) == pid && st == 0);
  CHECK(wait(&st) == -1);
  return 0;
}

static int badptr(void) {
  struct meminfo *top = (struct meminfo *)(USER_TOP - 8);
  CHECK(write(1, (char *)0, 8) == -1);
  CHECK(write(1, kernelptr, 8) == -1);
  CHECK(write(1, (char *)UGUARD_BASE, 8) == -1);
  CHECK(write(1, (char *)-16L, 32) == -1);
  CHECK(write(1, (char *)(USER_TOP - 1), 2) == -1);
  CHECK(meminfo(0) == -1);
  CHECK(meminfo((struct meminfo *)syscalls) == -1);  // text is not writable
  CHECK(meminfo((struct meminfo *)kernelptr) == -1);
  CHECK(meminfo(top) == -1);  // runs off the end of user space
  char *end = sbrk(0);
  char *pageend = (char *)(((unsigned long)end + PGSIZE - 1) & ~(PGSIZE - 1));
  CHECK(meminfo((struct meminfo *)(pageend - 8)) == -1);  // crosses the heap's end
  CHECK(spawn(0, 0) == -1);
  CHECK(spawn(kernelptr, 0) == -1);
  CHECK(spawn("hello", (char **)kernelptr) == -1);
  char *badargv[] = {"hello", kernelptr, 0};
  CHECK(spawn("hello", badargv) == -1);
  char *av[] = {"hello", 0};
  int pid = spawn("hello", av), st = -5;
  CHECK(pid > 0);
  CHECK(wait((int *)syscalls) == -1);     // rejected before reaping ...
  CHECK(wait((int *)kernelptr) == -1);
  CHECK(wait(&st) == pid && st == 0);   // ... so the child is still there
  return 0;
}

static int args(int argc, char **argv) {
  CHECK(argc >= 2 && strcmp(argv[0], "systest") == 0 && strcmp(argv[1], "args") == 0);
  CHECK(argv[argc] == 0);
  CHECK(((unsigned long)argv & 15) == 0);
  CHECK((unsigned long)argv >= USTACK_BASE && (unsigned long)argv < USER_TOP);
  for (int i = 2; i < argc; i++)
    CHECK(strlen(argv[i]) == (size_t)(i - 1));  // callers pass "a", "bb", "ccc", ...
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "syscalls") == 0)
    syscalls();
  else if (strcmp(mode, "badptr") == 0)
    badptr();
  else if (strcmp(mode, "args") == 0)
    args(argc, argv);
  else {
    printf("systest: usage: systest syscalls|badptr|args ...\n");
    return 2;
  }
  printf("systest: %s %s\n", mode, failed ? "FAILED" : "ok");
  return failed;
}
