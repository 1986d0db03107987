// The printf format engine shared by the kernel (console output) and the
// user library (buffers): format.c.
#pragma once
#include <stdarg.h>

// Format `fmt` with `ap`, handing each output character to put(arg, c).
// Conversions: %d %u %x %p %s %c %%, with a width, '-' (left-justify),
// '0' (zero pad) and l/ll; %p is 0x and 16 hex digits.
void vformat(void (*put)(void *arg, char c), void *arg, const char *fmt, va_list ap);
