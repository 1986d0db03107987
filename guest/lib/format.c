// The printf format engine shared by the kernel and the user library: one
// copy of the conversions, the output left to the caller (format.h).
#include "format.h"

static void putnum(void (*put)(void *, char), void *arg, unsigned long x, int base, int neg,
                   int width, int zero, int left) {
  char tmp[24];
  int i = 0;
  do {
    tmp[i++] = "0123456789abcdef"[x % base];
    x /= base;
  } while (x);
  if (neg)
    tmp[i++] = '-';
  int pad = width - i;
  while (!left && pad-- > 0)
    put(arg, zero ? '0' : ' ');
  while (i > 0)
    put(arg, tmp[--i]);
  while (left && pad-- > 0)
    put(arg, ' ');
}

void vformat(void (*put)(void *arg, char c), void *arg, const char *fmt, va_list ap) {
  for (const char *p = fmt; *p; p++) {
    if (*p != '%') {
      put(arg, *p);
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
      putnum(put, arg, v < 0 ? -(unsigned long)v : (unsigned long)v, 10, v < 0, width, zero,
             left);
      break;
    }
    case 'u':
      putnum(put, arg, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10, 0, width,
             zero, left);
      break;
    case 'x':
      putnum(put, arg, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16, 0, width,
             zero, left);
      break;
    case 'p':
      put(arg, '0');
      put(arg, 'x');
      putnum(put, arg, va_arg(ap, unsigned long), 16, 0, 16, 1, 0);
      break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      int n = 0;
      s = s ? s : "(null)";
      while (s[n])
        n++;
      for (int pad = left ? 0 : width - n; pad > 0; pad--)
        put(arg, ' ');
      for (const char *c = s; *c; c++)
        put(arg, *c);
      for (; left && n < width; n++)
        put(arg, ' ');
      break;
    }
    case 'c': put(arg, (char)va_arg(ap, int)); break;
    case '%': put(arg, '%'); break;
    case 0: return;
    default: put(arg, '%'); put(arg, *p); break;
    }
  }
}
