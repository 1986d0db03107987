// swapoff: turn swap off - every page on the swap device comes back into
// memory and the device is left unused (swapon turns it on again). How the
// kernel finds the pages' PTEs is the boot parameter swapoff= (scan, batch,
// hint, walk; docs/swapoff.md). Prints what the call did:
//   swapoff: walk: 16384 pages (64 MiB) back in 1234 ms, 54.3 MB/s; 0 freed
//   swapoff: 98765 page-table entries read, 9 address-space searches, hints 0 hit 0 missed
//   swapoff: 1024 reads, 131072 sectors, 8192 frames, 8192 replies, 3 retransmits
// Exits 0, or 1 if swap could not be turned off (with the reason).
#include "user.h"

static const char *const modes[NSWAPOFF] = {"scan", "batch", "hint", "walk"};

int main(void) {
  struct swapoffinfo si;
  memset(&si, 0, sizeof si);
  int r = (int)syscall(SYS_swapoff, (long)&si, 0, 0);
  const char *mode = si.mode >= 0 && si.mode < NSWAPOFF ? modes[si.mode] : "?";
  if (r != 0) {
    printf("swapoff: failed: %s\n", si.why[0] ? si.why : "bad call");
    if (si.slots == 0)
      return 1;
  }
  unsigned long ms = si.ns / 1000000;
  // MB/s (10^6 bytes) with one decimal: pages * 4096 * 10^4 / ns tenths
  unsigned long tenths = si.ns ? si.pages * 4096UL * 10000UL / si.ns : 0;
  printf("swapoff: %s: %lu pages (%lu MiB) back in %lu ms, %lu.%lu MB/s; %lu freed\n", mode,
         si.pages, si.pages / 256, ms, tenths / 10, tenths % 10, si.freed);
  printf("swapoff: %lu page-table entries read, %lu address-space searches, "
         "hints %lu hit %lu missed\n", si.ptes, si.mms, si.hint_hits, si.hint_misses);
  printf("swapoff: %lu reads, %lu sectors, %lu frames, %lu replies, %lu retransmits\n",
         si.reads, si.sectors, si.frames, si.replies, si.retransmits);
  return r != 0;
}
