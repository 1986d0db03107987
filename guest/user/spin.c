// spin: `spin N` burns N rounds of CPU without a system call, so only the
// timer can take the hart away from it. Exits 0.
#include "user.h"

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  volatile unsigned long x = 1;
  for (long i = 0; i < n; i++)
    x = x * 6364136223846793005UL + 1442695040888963407UL;
  return 0;
}
