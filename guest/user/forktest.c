// forktest: concurrency over spawn/wait. `forktest workers=N work=W` starts
// N copies of itself that each compute W rounds (long enough to be
// preempted), then reaps them all and checks every exit status came back
// exactly once. Prints "forktest: ok" and exits 0 on success.
#include "user.h"

static int child(int id, long work) {
  printf("forktest: child %d (pid %d) running\n", id, getpid());
  unsigned long x = 88172645463325252UL + id;
  for (long i = 0; i < work; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  printf("forktest: child %d done (%lx)\n", id, x & 0xffff);
  return 10 + id;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "child") == 0)
    return child(atol(argv[2]), atol(argv[3]));
  const char *w = argval(argc, argv, "workers"), *k = argval(argc, argv, "work");
  int n = w ? atol(w) : 4;
  long work = k ? atol(k) : 200000;
  if (n < 1 || n > 24) {
    printf("forktest: workers must be 1..24\n");
    return 2;
  }
  char ids[24][8], works[24];
  snprintf(works, sizeof works, "%ld", work);
  for (int i = 0; i < n; i++) {
    snprintf(ids[i], sizeof ids[i], "%d", i);
    char *av[] = {"forktest", "child", ids[i], works, 0};
    if (spawn("forktest", av) < 0) {
      printf("forktest: spawn %d failed\n", i);
      return 1;
    }
  }
  unsigned seen = 0;
  for (int i = 0; i < n; i++) {
    int st;
    if (wait(&st) < 0 || st < 10 || st >= 10 + n || (seen & (1U << (st - 10)))) {
      printf("forktest: bad wait status %d\n", st);
      return 1;
    }
    seen |= 1U << (st - 10);
  }
  if (wait(0) != -1) {
    printf("forktest: wait found an extra child\n");
    return 1;
  }
  printf("forktest: ok, %d children\n", n);
  return 0;
}
