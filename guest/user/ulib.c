// String helpers and the spawn-and-wait helpers programs share.
#include "user.h"

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n])
    n++;
  return n;
}

int strcmp(const char *a, const char *b) {
  for (; *a && *a == *b; a++, b++)
    ;
  return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n) {
  for (; n && *a && *a == *b; n--, a++, b++)
    ;
  return n ? (unsigned char)*a - (unsigned char)*b : 0;
}

char *strcpy(char *dst, const char *src) {
  char *d = dst;
  while ((*d++ = *src++))
    ;
  return dst;
}

char *strchr(const char *s, int c) {
  for (; *s; s++)
    if (*s == c)
      return (char *)s;
  return 0;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--)
    *d++ = c;
  return dst;
}

void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--)
    *d++ = *s++;
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y)
      return *x - *y;
  return 0;
}

// Returns the decimal number at s (optional '-'); stops at the first non-digit.
long atol(const char *s) {
  long v = 0, neg = *s == '-';
  for (s += neg; *s >= '0' && *s <= '9'; s++)
    v = v * 10 + (*s - '0');
  return neg ? -v : v;
}

// Returns the value of the first "key=value" argument (argv[1..]), or 0.
const char *argval(int argc, char **argv, const char *key) {
  size_t n = strlen(key);
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=')
      return argv[i] + n + 1;
  return 0;
}

// Spawn name with argv and wait for it. Returns its exit status, or -1000
// if it could not be spawned. Other children reaped meanwhile are dropped.
int run(const char *name, char **argv) {
  int pid = spawn(name, argv), st, w;
  if (pid < 0)
    return -1000;
  while ((w = wait(&st)) != pid)
    if (w < 0)
      return -1000;
  return st;
}

// run() for a command line: words separated by spaces (modified in place).
int runline(char *line) {
  char *argv[MAXARG + 1];
  int n = 0;
  for (char *p = line; *p && n < MAXARG;) {
    while (*p == ' ')
      *p++ = 0;
    if (!*p)
      break;
    argv[n++] = p;
    while (*p && *p != ' ')
      p++;
  }
  argv[n] = 0;
  return n ? run(argv[0], argv) : -1000;
}
