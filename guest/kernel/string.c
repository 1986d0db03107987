// The few string functions the kernel needs (the compiler may call memset
// and memcpy for struct copies, so they must exist under these names).
#include "types.h"
#include "defs.h"

// Word stores when aligned: zeroing pages is the kernel's hottest loop.
void *memset(void *dst, int c, uint64 n) {
  uint8 *d = dst;
  if (((uint64)d | n) % 8 == 0) {
    uint64 w = (uint8)c * 0x0101010101010101UL;
    uint64 *q = dst, *e = (uint64 *)(d + n);
    for (; e - q >= 4; q += 4) {
      q[0] = w;
      q[1] = w;
      q[2] = w;
      q[3] = w;
    }
    while (q < e)
      *q++ = w;
    return dst;
  }
  while (n--)
    *d++ = c;
  return dst;
}

void *memcpy(void *dst, const void *src, uint64 n) {
  uint8 *d = dst;
  const uint8 *s = src;
  if (((uint64)d | (uint64)s | n) % 8 == 0) {
    uint64 *dq = dst;
    const uint64 *sq = src;
    for (n /= 8; n--;)
      *dq++ = *sq++;
    return dst;
  }
  // 4-byte aligned: AoE data sits 36 bytes into a frame, so copies between
  // RX buffers and pages are aligned to 4 but not to 8.
  if (((uint64)d | (uint64)s | n) % 4 == 0) {
    uint32 *dw = dst;
    const uint32 *sw = src;
    for (n /= 4; n >= 4; n -= 4, dw += 4, sw += 4) {
      dw[0] = sw[0];
      dw[1] = sw[1];
      dw[2] = sw[2];
      dw[3] = sw[3];
    }
    while (n--)
      *dw++ = *sw++;
    return dst;
  }
  while (n--)
    *d++ = *s++;
  return dst;
}

int memcmp(const void *a, const void *b, uint64 n) {
  const uint8 *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y)
      return *x - *y;
  return 0;
}

int strncmp(const char *a, const char *b, uint64 n) {
  for (; n && *a && *a == *b; n--, a++, b++)
    ;
  return n ? (uint8)*a - (uint8)*b : 0;
}

int strcmp(const char *a, const char *b) {
  for (; *a && *a == *b; a++, b++)
    ;
  return (uint8)*a - (uint8)*b;
}

uint64 strlen(const char *s) {
  uint64 n = 0;
  while (s[n])
    n++;
  return n;
}

// C's strncpy: copy up to n bytes of src and NUL-pad to n. The result is not
// terminated if src has n bytes or more, so callers pass one less than room.
char *strncpy(char *dst, const char *src, uint64 n) {
  uint64 i = 0;
  for (; i < n && src[i]; i++)
    dst[i] = src[i];
  for (; i < n; i++)
    dst[i] = 0;
  return dst;
}
