// init: the first process. With arguments (the boot parameter
// init=NAME ARGS...) it runs NAME ARGS and exits with its status, which
// becomes emu's exit status; without (or with `init=demo`) it runs the
// process and paging demo; `init=swapdemo` runs the swap demo (memhog with a
// 64 MiB working set, meant for 16 MiB of RAM and a lossy link).
#include "user.h"

static void showmem(void) {
  struct meminfo mi;
  if (meminfo(&mi) != 0) {
    printf("init: meminfo failed\n");
    return;
  }
  printf("init: memory: %lu of %lu pages free; watermarks min %lu low %lu high %lu\n", mi.free,
         mi.total, mi.min, mi.low, mi.high);
  for (unsigned long i = 0; i < mi.nproc; i++)
    printf("init:   pid %d %s rss %lu pages\n", mi.procs[i].pid, mi.procs[i].name,
           mi.procs[i].rss);
}

static int step(const char *what, char *cmd, int want) {
  char line[64];
  strcpy(line, cmd);
  printf("init: $ %s    # %s\n", cmd, what);
  int st = runline(line);
  if (st != want) {
    printf("init: '%s' exited with %d, expected %d\n", cmd, st, want);
    return 1;
  }
  return 0;
}

// Processes, demand paging, a segfault that kills only its process.
static int demo(void) {
  int bad = 0;
  printf("init: demo: processes, demand paging, a contained segfault\n");
  bad += step("a first program", "hello world", 0);
  bad += step("round-robin over spawn/wait", "forktest workers=3 work=300000", 0);
  bad += step("demand-zero paging", "memtouch pages=64", 0);
  bad += step("a bad access", "segv null", -1);
  printf("init: segv was killed; the kernel and init carry on\n");
  showmem();
  printf("init: demo %s\n", bad ? "FAILED" : "done");
  return bad;
}

// The default demo: a working set of 64 MiB (four processes of 16 MiB)
// on a machine of 16 MiB, swapping over AoE through a lossy link. Without a
// swap device (no eNIC in the device tree, or swap=off) it cannot run:
// it says so and returns NOSWAP.
#define NOSWAP 6   // ENXIO: no such device
static int swapdemo(void) {
  struct meminfo mi;
  if (meminfo(&mi) != 0 || !mi.swap) {
    printf("init: swap demo: no swap device (no eNIC in the device tree, or swap=off), "
           "cannot swap; exit status %d\n", NOSWAP);
    return NOSWAP;
  }
  printf("init: swap demo: 4 x 16 MiB of pages on a 16 MiB machine, over AoE, 2 passes\n");
  int st = step("working set 4x RAM", "memhog pages=4096 passes=2 procs=4", 0);
  st |= step("free memory and the reserve tree", "meminfo", 0);
  printf("init: swap demo %s\n", st ? "FAILED" : "done");
  return st;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "demo") == 0)
    return demo();
  if (argc > 1 && strcmp(argv[1], "swapdemo") == 0)
    return swapdemo();
  if (argc > 1) {
    int st = run(argv[1], argv + 1);
    if (st == -1000) {
      printf("init: cannot run '%s'\n", argv[1]);
      return 127;
    }
    return st;
  }
  return demo();
}
