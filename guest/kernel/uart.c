// ns16550a UART, polled transmit, at the base the device tree gives. Until
// uartinit has it, characters go out through the SBI console.
#include "types.h"
#include "defs.h"

#define THR 0
#define IER 1
#define LCR 3
#define LSR 5
#define LSR_THRE 0x20

static volatile uint8 *uart;  // 0: not known yet

void uartinit(uint64 base) {
  uart = (volatile uint8 *)base;
  uart[IER] = 0;
  uart[LCR] = 0x03;  // 8N1
}

void uartputc(int c) {
  if (!uart) {
    sbi_putchar(c);
    return;
  }
  while ((uart[LSR] & LSR_THRE) == 0)
    ;
  uart[THR] = c;
}
