// printf and friends: format into a buffer, then one write() per call, so
// lines from concurrent processes never interleave mid-line.
#include <stdarg.h>
#include "user.h"

struct out {
  char *buf;
  size_t size, len;  // len counts every byte, even those that did not fit
};

static void put(struct out *o, char c) {
  if (o->len + 1 < o->size)
    o->buf[o->len] = c;
  o->len++;
}

static void putnum(struct out *o, unsigned long x, int base, int neg, int width, int zero) {
  char tmp[24];
  int i = 0;
  do {
    tmp[i++] = "0123456789abcdef"[x % base];
    x /= base;
  } while (x);
  if (neg)
    tmp[i++] = '-';
  while (i < width)
    tmp[i++] = zero ? '0' : ' ';
  while (i > 0)
    put(o, tmp[--i]);
}

static void format(struct out *o, const char *fmt, va_list ap) {
  for (const char *p = fmt; *p; p++) {
    if (*p != '%') {
      put(o, *p);
      continue;
    }
    p++;
    int zero = 0, width = 0, lng = 0, left = 0;
    if (*p == '-') {
      left = 1;
      p++;
    }
    if (*p == '0') {
      zero = 1;
      p++;
    }
    while (*p >= '0' && *p <= '9')
      width = width * 10 + (*p++ - '0');
    while (*p == 'l') {
      lng = 1;
      p++;
    }
    switch (*p) {
    case 'd': {
      long v = lng ? va_arg(ap, long) : va_arg(ap, int);
      putnum(o, v < 0 ? -(unsigned long)v : (unsigned long)v, 10, v < 0, width, zero);
      break;
    }
    case 'u': putnum(o, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10, 0, width, zero); break;
    case 'x': putnum(o, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16, 0, width, zero); break;
    case 'p':
      put(o, '0');
      put(o, 'x');
      putnum(o, va_arg(ap, unsigned long), 16, 0, 0, 0);
      break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      int n = 0;
      s = s ? s : "(null)";
      while (s[n])
        n++;
      for (int pad = left ? 0 : width - n; pad > 0; pad--)
        put(o, ' ');
      for (const char *c = s; *c; c++)
        put(o, *c);
      for (; left && n < width; n++)
        put(o, ' ');
      break;
    }
    case 'c': put(o, va_arg(ap, int)); break;
    case '%': put(o, '%'); break;
    case 0: return;
    default: put(o, '%'); put(o, *p); break;
    }
  }
}

// Format into buf (size bytes, always terminated if size > 0). Returns the
// length the whole result would have.
static int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
  struct out o = {buf, size, 0};
  format(&o, fmt, ap);
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
