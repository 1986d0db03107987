// memhog for the Linux guest (docs/linux.md): the same per-page pattern as
// our kernel's memhog (guest/user/pattern.h), so one checker reads both.
//   memhog pages=N [passes=P]
// fills N pages, then P times verifies every page and rewrites it with the
// next generation; prints
//   memhog: pages=N passes=P mismatches=M
// and exits 0, or 1 if M > 0, or 2 if the memory cannot be had.
// Built static with Debian's riscv64 cross compiler (guest/linux/build.py).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../user/pattern.h"

static const char *arg(int argc, char **argv, const char *key) {
  size_t n = strlen(key);
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=')
      return argv[i] + n + 1;
  return 0;
}

int main(int argc, char **argv) {
  const char *p = arg(argc, argv, "pages"), *q = arg(argc, argv, "passes");
  unsigned long n = p ? strtoul(p, 0, 10) : 1024, passes = q ? strtoul(q, 0, 10) : 2;
  if (n < 1 || passes < 1) {
    fprintf(stderr, "memhog: pages >= 1, passes >= 1\n");
    return 2;
  }
  char *base = mmap(0, n * PGSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    perror("memhog: mmap");
    return 2;
  }
  unsigned long mism = 0;
  for (unsigned long pass = 0; pass <= passes; pass++) {
    for (unsigned long i = 0; i < n; i++) {
      unsigned long *w = (unsigned long *)(base + i * PGSIZE);
      if (pass > 0 && bad(w, 0, i, pass - 1)) {
        if (mism < 5)
          printf("memhog: page %lu pass %lu: got page %lu gen %lu\n", i, pass, w[1], w[2]);
        mism++;
      }
      if (pass < passes)
        fill(w, 0, i, pass);
    }
  }
  printf("memhog: pages=%lu passes=%lu mismatches=%lu\n", n, passes, mism);
  return mism ? 1 : 0;
}
