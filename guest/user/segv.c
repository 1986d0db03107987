// segv: makes one bad access, chosen by argv[1], and should be killed by the
// kernel before it can print "survived".
//   null    load from address 0 (no region)
//   text    store into its own text (region forbids writing)
//   exec    jump into its data (region forbids executing)
//   kernel  load from the kernel image (not user memory)
//   guard   recurse until the stack runs into its guard page
#include "user.h"

static char data[16] = {1};
static volatile unsigned long nowhere;  // 0, but the compiler cannot know

// Each level keeps 1 KiB live; the stack region ends long before n does.
static int recurse(int n) {
  volatile char frame[1024];
  frame[0] = n;
  if (n == 1 << 30)
    return 0;
  return recurse(n + 1) + frame[0];
}

int main(int argc, char **argv) {
  const char *m = argc > 1 ? argv[1] : "null";
  printf("segv: %s\n", m);
  if (strcmp(m, "null") == 0)
    return *(volatile int *)nowhere;
  if (strcmp(m, "text") == 0)
    *(volatile int *)main = 0;
  else if (strcmp(m, "exec") == 0) {
    data[1] = argc;  // written, so it stays in the data region
    ((void (*)(void))data)();
  }
  else if (strcmp(m, "kernel") == 0)
    return *(volatile int *)0x80200000UL;
  else if (strcmp(m, "guard") == 0)
    return recurse(0);
  else
    printf("segv: unknown mode\n");
  printf("segv: survived\n");
  return 1;
}
