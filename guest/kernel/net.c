// The net core: received frames are dispatched by ethertype; what nobody
// takes is dropped and counted by reason.
#include "types.h"
#include "net.h"
#include "kstats.h"
#include "mm.h"
#include "defs.h"

// Copy `len` bytes at offset `off` of the frame into dst. Returns 0, or -1
// if the frame is shorter than off + len.
int nb_copy(const struct nbuf *nb, uint32 off, void *dst, uint32 len) {
  if (off + len > nb->len || off + len < off)
    return -1;
  uint8 *d = dst;
  for (int i = 0; i < nb->nfrag && len; i++) {
    if (off >= nb->flen[i]) {
      off -= nb->flen[i];
      continue;
    }
    uint32 n = nb->flen[i] - off;
    if (n > len)
      n = len;
    memcpy(d, nb->frag[i] + off, n);
    d += n;
    len -= n;
    off = 0;
  }
  return 0;
}

// Dispatch a received frame. AoE frames go to the initiator in PF_MEMALLOC
// state (their completions free memory); a frame in a reserve-backed buffer
// (nb->pfmemalloc) that is not AoE is dropped and counted (pfmemalloc_drop).
void net_rx(struct nbuf *nb) {
  kstats.net_rx_frames++;
  kstats.net_rx_bytes += nb->len;
  if (nb->len < ETH_HLEN || nb->flen[0] < ETH_HLEN) {
    kstats.net_drop_runt++;
    return;
  }
  uint16 type = (uint16)(nb->frag[0][12] << 8 | nb->frag[0][13]);
  switch (type) {
  case ETHERTYPE_AOE: {
    int old = memalloc_save(RESERVE_AOE_RX);
    aoe_rx(nb);
    memalloc_restore(old);
    break;
  }
  default:
    if (nb->pfmemalloc)
      kstats.pfmemalloc_drop++;
    else
      kstats.net_drop_unknown_type++;
    break;
  }
}
