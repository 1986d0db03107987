// memhog's page pattern, shared by the programs that check that pages come
// back from swap bit-identical (memhog, swapofftest, morning, and the Linux
// guest's memhog: guest/linux/memhog.c): a page holds its process, page
// number and pass generation, a pattern derived from them, and a checksum.
// Include once per program; it defines fill() and bad(). It needs no
// library, so a Linux program includes it as ours do.
#pragma once

#ifndef PGSIZE
#define PGSIZE 4096UL
#endif
#define WORDS (PGSIZE / 8)
#define MAGIC 0x4d454d484f470000UL  // "MEMHOG"

static unsigned long mix(unsigned long x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdUL;
  x ^= x >> 33;
  return x;
}

// Write the pattern of (proc, page, gen) into page w.
static void fill(unsigned long *w, unsigned long proc, unsigned long page, unsigned long gen) {
  unsigned long seed = mix(proc << 40 ^ page << 8 ^ gen), sum = 0;
  w[0] = MAGIC | proc;
  w[1] = page;
  w[2] = gen;
  for (int i = 3; i < WORDS - 1; i++)
    w[i] = seed + i * 0x9e3779b97f4a7c15UL;
  for (int i = 0; i < WORDS - 1; i++)
    sum = sum * 31 + w[i];
  w[WORDS - 1] = sum;
}

// Returns 1 if page w is not exactly what fill(proc, page, gen) wrote.
static int bad(unsigned long *w, unsigned long proc, unsigned long page, unsigned long gen) {
  unsigned long sum = 0;
  if (w[0] != (MAGIC | proc) || w[1] != page || w[2] != gen)
    return 1;
  for (int i = 0; i < WORDS - 1; i++)
    sum = sum * 31 + w[i];
  if (sum != w[WORDS - 1])
    return 1;
  unsigned long seed = mix(proc << 40 ^ page << 8 ^ gen);
  for (int i = 3; i < WORDS - 1; i++)
    if (w[i] != seed + i * 0x9e3779b97f4a7c15UL)
      return 1;
  return 0;
}
