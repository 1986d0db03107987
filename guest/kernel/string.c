// The few string functions the kernel needs (the compiler may call these).
#include "types.h"
#include "defs.h"

void *memset(void *dst, int c, uint64 n) {
  uint8 *d = dst;
  while (n--)
    *d++ = c;
  return dst;
}

void *memcpy(void *dst, const void *src, uint64 n) {
  uint8 *d = dst;
  const uint8 *s = src;
  while (n--)
    *d++ = *s++;
  return dst;
}

int strncmp(const char *a, const char *b, uint64 n) {
  for (; n && *a && *a == *b; n--, a++, b++)
    ;
  return n ? (uint8)*a - (uint8)*b : 0;
}

uint64 strlen(const char *s) {
  uint64 n = 0;
  while (s[n])
    n++;
  return n;
}
