// ns16550a UART at UART_BASE: polled transmit.
#include "types.h"
#include "memlayout.h"
#include "defs.h"

#define REG(r) ((volatile uint8 *)(UART_BASE + (r)))
#define THR 0
#define IER 1
#define LCR 3
#define LSR 5
#define LSR_THRE 0x20

void uartinit(void) {
  *REG(IER) = 0;
  *REG(LCR) = 0x03;  // 8N1
}

void uartputc(int c) {
  while ((*REG(LSR) & LSR_THRE) == 0)
    ;
  *REG(THR) = c;
}
