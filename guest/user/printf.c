// printf and friends: format into a buffer, then one write() per call, so
// lines from concurrent processes never interleave mid-line.
#include <stdarg.h>
#include "user.h"
#include "format.h"

struct out {
  char *buf;
  size_t size, len;  // len counts every byte, even those that did not fit
};

static void put(void *arg, char c) {
  struct out *o = arg;
  if (o->len + 1 < o->size)
    o->buf[o->len] = c;
  o->len++;
}

// Format into buf (size bytes, always terminated if size > 0). Returns the
// length the whole result would have.
static int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
  struct out o = {buf, size, 0};
  vformat(put, &o, fmt, ap);
  if (size)
    buf[o.len < size ? o.len : size - 1] = 0;
  return o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

static int vfprintf(int fd, const char *fmt, va_list ap) {
  char buf[256];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  write(fd, buf, n < (int)sizeof buf ? n : (int)sizeof buf - 1);
  return n;
}

int fprintf(int fd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vfprintf(fd, fmt, ap);
  va_end(ap);
  return n;
}

int printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vfprintf(1, fmt, ap);
  va_end(ap);
  return n;
}
