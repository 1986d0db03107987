// The NIC driver (docs/nic.md): one TX ring, one RX ring whose buffers are
// page fragments (pfrag.c; Linux's skb data), interrupts through the PLIC.
// A received frame is handed up only once its replacement buffer has been
// allocated; if that allocation fails the frame is dropped and its buffer
// goes straight back on the ring (Linux drivers, e1000). So an exhausted
// machine keeps its ring full but receives nothing - unless the reserve
// backs the replacements (docs/reserves.md). TX is synchronous on this
// device: the doorbell store sends the frame before it retires, so a
// descriptor is done as soon as the tail is written.
#include "types.h"
#include "riscv.h"
#include "nic.h"
#include "net.h"
#include "kstats.h"
#include "mm.h"
#include "defs.h"

#define NTX 64

static struct nic_desc *rx, *tx;   // both rings in one kernel page
static uint8 *rxbuf[NRX];          // the buffer posted (or to post) in each slot
static struct fragcache rxcache;
static uint32 rxnext;              // next descriptor the device fills
static uint32 rxtail;              // next descriptor we post
static uint32 txtail;
uint8 netmac[ETH_ALEN];
uint32 netmtu;
uint32 netbufsz;                   // RX buffer size
int netup;

// The eNIC's registers, at the base the device tree gives (platform.c).
static inline uint32 r(uint32 off) { return *(volatile uint32 *)(platform.enic.base + off); }
static inline void w(uint32 off, uint32 v) { *(volatile uint32 *)(platform.enic.base + off) = v; }

// Allocation flags for an RX buffer: while a network swap device is up,
// coming up (the probe is swapon: Linux marks the transport's socket
// SOCK_MEMALLOC then) or being drained by swapoff (Linux clears the mark
// only once swapoff is done) the buffers may come from the reserve (charged
// to aoe_rx), because the replies that free memory - or that swapoff waits
// for - must get in; otherwise they are ordinary and fail at min.
static int rxgfp(void) {
  return swap_active() || swapstate == SWAP_PROBING || swapstate == SWAP_DRAINING
             ? GFP_MEMALLOC | GFP_RES(RESERVE_AOE_RX)
             : 0;
}

// Post buffers from rxtail up to one before rxnext: the slot's own buffer
// if it kept one (a dropped frame's), else a new one. A failed allocation
// leaves the slot empty (counted); the next interrupt retries.
static void rxrefill(void) {
  uint32 t0 = rxtail;
  while ((rxtail + 1) % NRX != rxnext) {
    uint8 *b = rxbuf[rxtail];
    if (!b && !(b = frag_alloc(&rxcache, netbufsz, rxgfp()))) {
      kstats.net_refill_fails++;
      break;
    }
    rxbuf[rxtail] = b;
    rx[rxtail] = (struct nic_desc){(uint64)b, (uint16)netbufsz, 0, 0};
    rxtail = (rxtail + 1) % NRX;
  }
  if (rxtail != t0)
    w(NIC_REG_RX_TAIL, rxtail);
}

// Bring the NIC up: reset, rings, RX buffers, interrupts. Returns 0, or -1
// (saying why on the console) if the device tree has no eNIC, the device
// does not answer as one, or there is no memory.
int netinit(void) {
  if (!platform.enic.base) {
    printf("net: no eNIC in the device tree\n");
    return -1;
  }
  if (r(NIC_REG_ID) != NIC_ID_MAGIC) {
    printf("net: no eNIC at 0x%lx (bad ID register)\n", platform.enic.base);
    return -1;
  }
  w(NIC_REG_CTRL, NIC_CTRL_RESET);
  uint8 *page = palloc(FRAME_NETBUF);
  if (!page) {
    printf("net: no memory for the rings\n");
    return -1;
  }
  rx = (struct nic_desc *)page;
  tx = (struct nic_desc *)(page + NRX * NIC_DESC_SIZE);
  uint32 lo = r(NIC_REG_MAC_LO), hi = r(NIC_REG_MAC_HI);
  for (int i = 0; i < 4; i++)
    netmac[i] = lo >> (8 * i);
  netmac[4] = hi;
  netmac[5] = hi >> 8;
  netmtu = r(NIC_REG_MTU);
  netbufsz = netmtu + ETH_HLEN < 2048 ? netmtu + ETH_HLEN : 2048;
  w(NIC_REG_TX_BASE_LO, (uint64)tx);
  w(NIC_REG_TX_BASE_HI, (uint64)tx >> 32);
  w(NIC_REG_TX_SIZE, NTX);
  w(NIC_REG_RX_BASE_LO, (uint64)rx);
  w(NIC_REG_RX_BASE_HI, (uint64)rx >> 32);
  w(NIC_REG_RX_SIZE, NRX);
  rxnext = rxtail = txtail = 0;
  w(NIC_REG_INT_MASK, NIC_INT_RX | NIC_INT_ERROR | NIC_INT_RX_NOBUF);
  w(NIC_REG_CTRL, NIC_CTRL_ENABLE);
  rxrefill();
  plic_enable(platform.enic.irq);
  csr_set(sie, SIE_SEIE);
  netup = 1;
  printf("net: NIC %02x:%02x:%02x:%02x:%02x:%02x mtu %d, rx ring %d x %d-byte page fragments\n",
         netmac[0], netmac[1], netmac[2], netmac[3], netmac[4], netmac[5], (int)netmtu, NRX,
         (int)netbufsz);
  return 0;
}

// Send one frame made of `n` pieces (the first starts with the Ethernet
// header). Returns 0, or -1 if the NIC is down, the frame is malformed or
// the ring is full (counted; the caller's retransmit covers it).
int net_tx(const struct iov *v, int n) {
  uint32 len = 0;
  for (int i = 0; i < n; i++)
    len += v[i].len;
  if (!netup || n < 1 || len < ETH_HLEN || len > ETH_HLEN + netmtu)
    return -1;
  uint32 head = r(NIC_REG_TX_HEAD);
  if ((head + NTX - txtail - 1) % NTX < (uint32)n) {
    kstats.net_tx_full++;
    return -1;
  }
  for (int i = 0; i < n; i++) {
    tx[txtail] = (struct nic_desc){(uint64)v[i].base, (uint16)v[i].len,
                                   (uint16)(i + 1 < n ? NIC_DESC_F_MORE : 0), 0};
    txtail = (txtail + 1) % NTX;
  }
  w(NIC_REG_TX_TAIL, txtail);  // the frame is on the wire when this returns
  kstats.net_tx_frames++;
  kstats.net_tx_bytes += len;
  return 0;
}

// Take every completed frame off the RX ring. For each, allocate
// replacements for its buffers first: if that fails the frame is dropped
// (counted in net_refill_fails) and its buffers stay in their slots to be
// posted again; otherwise the replacements take the slots, the frame goes
// to the net core and its buffers are freed afterwards.
static void rxdrain(void) {
  while (rx[rxnext].status & NIC_DESC_S_DONE) {
    uint32 slot[NRX];
    int n = 0, more;
    do {
      more = rx[rxnext].status & NIC_DESC_S_MORE;
      slot[n++] = rxnext;
      rxnext = (rxnext + 1) % NRX;
    } while (more && n < NRX - 1 && (rx[rxnext].status & NIC_DESC_S_DONE));
    uint8 *repl[NB_MAXFRAG];
    int got = 0;
    if (n <= NB_MAXFRAG)
      while (got < n && (repl[got] = frag_alloc(&rxcache, netbufsz, rxgfp())) != 0)
        got++;
    if (got < n) {
      for (int i = 0; i < got; i++)
        frag_free(repl[i]);
      for (int i = 0; i < n; i++)
        rx[slot[i]].status = 0;
      if (n > NB_MAXFRAG)
        kstats.net_drop_toolong++;
      else
        kstats.net_refill_fails++;
      continue;
    }
    struct nbuf nb = {.nfrag = n};
    for (int i = 0; i < n; i++) {
      struct nic_desc *d = &rx[slot[i]];
      nb.frag[i] = rxbuf[slot[i]];
      nb.flen[i] = d->len;
      nb.len += d->len;
      nb.pfmemalloc |= frag_pfmemalloc(nb.frag[i]);
      rxbuf[slot[i]] = repl[i];
      d->status = 0;
    }
    net_rx(&nb);
    for (int i = 0; i < n; i++)
      frag_free(nb.frag[i]);
  }
  rxrefill();
}

// The NIC's interrupt (called with the PLIC claim done by the caller).
void nic_intr(void) {
  uint32 st = r(NIC_REG_INT_STATUS);
  w(NIC_REG_INT_ACK, st);
  kstats.net_irqs++;
  if (st & NIC_INT_RX_NOBUF)
    kstats.net_rx_overruns++;
  if (st & NIC_INT_ERROR) {
    kstats.net_nic_errors++;
    printf("net: NIC error %d at index %d, NIC down\n", (int)r(NIC_REG_ERROR),
           (int)r(NIC_REG_ERR_INDEX));
    netup = 0;
    return;
  }
  rxdrain();
}
