// swapon: turn swap on again after swapoff. Exits 0, or 1 (with a line) if
// swap was not off.
#include "user.h"

int main(void) {
  if (syscall(SYS_swapon, 0, 0, 0) != 0) {
    printf("swapon: swap is not off\n");
    return 1;
  }
  printf("swapon: swap is on\n");
  return 0;
}
