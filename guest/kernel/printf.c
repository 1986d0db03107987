// Formatted console output (through the UART) and panic.
#include <stdarg.h>
#include "types.h"
#include "defs.h"

// Console output: a newline goes out as CR LF.
void consputc(int c) {
  if (c == '\n')
    uartputc('\r');
  uartputc(c);
}

#define putc consputc

static void printnum(uint64 x, int base, int sign, int width, int zero) {
  char buf[24];
  int i = 0, neg = 0;
  if (sign && (int64)x < 0) {
    neg = 1;
    x = -(int64)x;
  }
  do {
    buf[i++] = "0123456789abcdef"[x % base];
    x /= base;
  } while (x);
  if (neg)
    buf[i++] = '-';
  while (i < width)
    buf[i++] = zero ? '0' : ' ';
  while (--i >= 0)
    putc(buf[i]);
}

// Supports %d %u %x %p %s %c %% with optional width, zero pad and l/ll.
void printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  for (const char *p = fmt; *p; p++) {
    if (*p != '%') {
      putc(*p);
      continue;
    }
    p++;
    int zero = 0, width = 0, lng = 0;
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
    case 'd': printnum(lng ? va_arg(ap, long) : va_arg(ap, int), 10, 1, width, zero); break;
    case 'u': printnum(lng ? va_arg(ap, uint64) : va_arg(ap, uint32), 10, 0, width, zero); break;
    case 'x': printnum(lng ? va_arg(ap, uint64) : va_arg(ap, uint32), 16, 0, width, zero); break;
    case 'p': putc('0'); putc('x'); printnum(va_arg(ap, uint64), 16, 0, 16, 1); break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      for (s = s ? s : "(null)"; *s; s++)
        putc(*s);
      break;
    }
    case 'c': putc(va_arg(ap, int)); break;
    case '%': putc('%'); break;
    default: putc('%'); putc(*p); break;
    }
  }
  va_end(ap);
}

// Print "panic: msg" and power off with failure status (emu exits 1).
void panic(const char *msg) {
  printf("panic: %s\n", msg);
  sbi_shutdown(1);
}
