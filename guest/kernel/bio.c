// Block layer: asynchronous block I/O requests between the swap code and
// the AoE device. A bio comes from a fixed pool (no allocation on the
// page-out path), is submitted with submit_bio() and completes through its
// done() callback, from interrupt or timer-thread context.
#include "types.h"
#include "net.h"
#include "kstats.h"
#include "defs.h"

#define NBIO 64
static struct bio biopool[NBIO];
static int nbio_free = NBIO;

// Returns a cleared bio, or 0 if the pool is empty.
struct bio *bio_alloc(void) {
  for (int i = 0; i < NBIO; i++)
    if (!biopool[i].inuse) {
      memset(&biopool[i], 0, sizeof biopool[i]);
      biopool[i].inuse = 1;
      nbio_free--;
      return &biopool[i];
    }
  return 0;
}

void bio_free(struct bio *b) {
  if (b < biopool || b >= biopool + NBIO || !b->inuse)
    panic("bio_free: not a pool bio");
  b->inuse = 0;
  nbio_free++;
}

// Returns how many bios can be allocated now.
int bio_avail(void) { return nbio_free; }

// Start b; b->done(b) runs when it has completed (b->error 0 or -1).
void submit_bio(struct bio *b) {
  if (b->write)
    kstats.bio_writes++;
  else
    kstats.bio_reads++;
  aoe_submit(b);
}
