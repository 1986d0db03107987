// Formatted console output (through the UART) and panic. The conversions
// are the user library's too: guest/lib/format.c.
#include <stdarg.h>
#include "types.h"
#include "defs.h"
#include "format.h"

// Console output: a newline goes out as CR LF.
void consputc(int c) {
  if (c == '\n')
    uartputc('\r');
  uartputc(c);
}

static void conschar(void *arg, char c) { consputc(c); }

// printf to the console (format.h: %d %u %x %p %s %c %%, width, '-', '0', l).
void printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vformat(conschar, 0, fmt, ap);
  va_end(ap);
}

// Print "panic: msg" and power off with failure status (emu exits 1).
void panic(const char *msg) {
  printf("panic: %s\n", msg);
  sbi_shutdown(1);
}
