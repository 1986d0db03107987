// A reader for the flattened device tree the firmware hands the kernel at
// a1 (Devicetree Specification v0.4, chapter 5: the DTB format, version 17).
//
// A blob is a header, a memory-reservation block (pairs of u64 address and
// size, ended by 0, 0), a structure block and a strings block. The
// structure block is a stream of big-endian u32 tokens:
//   BEGIN_NODE name\0 (padded to 4)   a node starts; its properties follow,
//                                     then its children, then END_NODE
//   PROP len nameoff value (padded)   a property: nameoff indexes the strings
//   NOP                               nothing
//   END_NODE, END                     a node ends; the tree ends
// A node is named here by its offset in the structure block (the offset of
// its BEGIN_NODE). Nothing is copied or allocated: every answer points into
// the blob, which must therefore stay where it is (the kernel keeps its
// pages reserved). Every read is bounds-checked against the block sizes
// fdt_init accepted, so a damaged tree gives "not found", never a wild read.
#include "types.h"
#include "defs.h"

#define FDT_MAGIC      0xd00dfeed
#define FDT_VERSION    17
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE   2
#define FDT_PROP       3
#define FDT_NOP        4
#define FDT_END        9
#define MAXDEPTH       16   // deeper nodes are beyond fdt_parent (QEMU's virt: 4)

// The header's fields, in order (each a big-endian u32).
enum { H_MAGIC, H_TOTALSIZE, H_OFF_STRUCT, H_OFF_STRINGS, H_OFF_RSVMAP, H_VERSION,
       H_LAST_COMP, H_BOOT_CPU, H_SIZE_STRINGS, H_SIZE_STRUCT, H_WORDS };

static const uint8 *blob;              // the tree fdt_init accepted
static const uint8 *structs;           // its structure block
static const char *strings;            // its strings block
static uint32 structsize, stringsize;

// The big-endian u32 at p (any alignment).
uint32 fdt32(const void *p) {
  const uint8 *b = p;
  return (uint32)b[0] << 24 | (uint32)b[1] << 16 | (uint32)b[2] << 8 | b[3];
}

// The big-endian u64 at p.
uint64 fdt64(const void *p) { return (uint64)fdt32(p) << 32 | fdt32((const uint8 *)p + 4); }

// Returns 0 if `p` starts a DTB this reader understands (magic, version 17
// or a later one compatible with it, blocks inside totalsize, the structure
// block aligned), -1 otherwise. Reads only the header.
int fdt_check(const void *p) {
  uint32 h[H_WORDS];
  for (int i = 0; i < H_WORDS; i++)
    h[i] = fdt32((const uint8 *)p + 4 * i);
  if (h[H_MAGIC] != FDT_MAGIC || h[H_VERSION] < FDT_VERSION || h[H_LAST_COMP] > FDT_VERSION)
    return -1;
  uint64 total = h[H_TOTALSIZE];
  if (total < 4 * H_WORDS || h[H_OFF_STRUCT] % 4 || h[H_OFF_RSVMAP] % 8 ||
      (uint64)h[H_OFF_STRUCT] + h[H_SIZE_STRUCT] > total ||
      (uint64)h[H_OFF_STRINGS] + h[H_SIZE_STRINGS] > total || h[H_OFF_RSVMAP] + 16UL > total)
    return -1;
  return 0;
}

// Make the tree at `p` the one every other call reads. Returns 0, or -1 if
// fdt_check rejects it.
int fdt_init(const void *p) {
  if (fdt_check(p) != 0)
    return -1;
  blob = p;
  structs = blob + fdt32(blob + 4 * H_OFF_STRUCT);
  structsize = fdt32(blob + 4 * H_SIZE_STRUCT);
  strings = (const char *)blob + fdt32(blob + 4 * H_OFF_STRINGS);
  stringsize = fdt32(blob + 4 * H_SIZE_STRINGS);
  return 0;
}

// The size of the whole blob in bytes (its header's totalsize).
uint64 fdt_totalsize(void) { return fdt32(blob + 4 * H_TOTALSIZE); }

// The i-th entry of the memory-reservation block: 0 with *base and *size
// set, or -1 past the last entry.
int fdt_memreserve(int i, uint64 *base, uint64 *size) {
  uint64 off = fdt32(blob + 4 * H_OFF_RSVMAP) + 16UL * i;
  if (off + 16 > fdt_totalsize())
    return -1;
  *base = fdt64(blob + off);
  *size = fdt64(blob + off + 8);
  return *base == 0 && *size == 0 ? -1 : 0;
}

// The token at `off` in the structure block (END past its end).
static uint32 token(uint32 off) {
  return (uint64)off + 4 <= structsize ? fdt32(structs + off) : FDT_END;
}

// The length of the NUL-terminated string at s, looking at most at max
// bytes; returns max if there is no NUL (a damaged tree).
static uint32 boundedlen(const char *s, uint32 max) {
  uint32 n = 0;
  while (n < max && s[n])
    n++;
  return n;
}

// The offset of the first token after the BEGIN_NODE at `node` and its name.
static uint32 afterbegin(int node) {
  uint32 off = (uint32)node + 4;
  return (off + boundedlen((const char *)structs + off, structsize - off) + 1 + 3) & ~3U;
}

// The offset of the token after the PROP at `off` (structsize if its
// length runs past the block).
static uint32 afterprop(uint32 off) {
  uint64 next = ((uint64)off + 12 + token(off + 4) + 3) & ~3UL;
  return next < structsize ? (uint32)next : structsize;
}

// Returns the node after `node` in document order (depth first; -1: start
// at the root) and adds to *depth how far down it is from `node`: +1 for
// its first child, 0 for its next sibling, -k for a sibling of an ancestor.
// Returns -1 at the end of the tree.
int fdt_next_node(int node, int *depth) {
  uint32 off = 0;
  if (node >= 0) {
    off = afterbegin(node);
    *depth += 1;   // what follows a node's header is inside it
  }
  for (;;) {
    switch (token(off)) {
    case FDT_BEGIN_NODE:
      return (int)off;
    case FDT_PROP:
      off = afterprop(off);
      break;
    case FDT_NOP:
      off += 4;
      break;
    case FDT_END_NODE:
      *depth -= 1;
      off += 4;
      break;
    default:   // FDT_END, or a token this reader does not know
      return -1;
    }
    if (off >= structsize)
      return -1;
  }
}

// The node's name with its unit address ("serial@10000000"; "" for the root).
const char *fdt_name(int node) { return (const char *)structs + node + 4; }

// Returns a pointer to the value of property `name` of `node` and stores
// its length in *len (if len is not 0), or returns 0 if the node has no
// such property (or node is -1).
const void *fdt_getprop(int node, const char *name, int *len) {
  if (node < 0)
    return 0;
  uint32 off = afterbegin(node);
  for (;;) {
    uint32 t = token(off);
    if (t == FDT_NOP) {
      off += 4;
      continue;
    }
    if (t != FDT_PROP)
      return 0;   // properties come before the children
    uint32 plen = token(off + 4), nameoff = token(off + 8);
    if ((uint64)off + 12 + plen > structsize || nameoff >= stringsize)
      return 0;
    const char *pname = strings + nameoff;
    uint32 n = boundedlen(pname, stringsize - nameoff);
    if (n == strlen(name) && strncmp(pname, name, n) == 0) {
      if (len)
        *len = (int)plen;
      return structs + off + 12;
    }
    off = afterprop(off);
  }
}

// The property as one u32, or `dflt` if it is missing or not 4 bytes long
// (or node is -1).
uint32 fdt_getu32(int node, const char *name, uint32 dflt) {
  int len;
  const void *v = fdt_getprop(node, name, &len);
  return v && len == 4 ? fdt32(v) : dflt;
}

// Returns 1 if the string list `list` (len bytes of NUL-terminated strings,
// as in compatible) holds `s`.
static int inlist(const char *list, int len, const char *s) {
  for (int at = 0; at < len;) {
    uint32 n = boundedlen(list + at, len - at);
    if (n == strlen(s) && strncmp(list + at, s, n) == 0)
      return 1;
    at += n + 1;
  }
  return 0;
}

// Returns 1 if `compat` is one of the node's compatible strings.
int fdt_is_compatible(int node, const char *compat) {
  int len;
  const char *list = fdt_getprop(node, "compatible", &len);
  return list && inlist(list, len, compat);
}

// The first node after `from` (-1: from the start) compatible with
// `compat`, or -1.
int fdt_find_compatible(int from, const char *compat) {
  int depth = 0;
  for (int n = fdt_next_node(from, &depth); n >= 0; n = fdt_next_node(n, &depth))
    if (fdt_is_compatible(n, compat))
      return n;
  return -1;
}

// The first node whose phandle property is `phandle`, or -1 (always for 0
// and 0xffffffff, which name no node).
int fdt_find_phandle(uint32 phandle) {
  if (phandle == 0 || phandle == 0xffffffff)
    return -1;
  int depth = 0;
  for (int n = fdt_next_node(-1, &depth); n >= 0; n = fdt_next_node(n, &depth))
    if (fdt_getu32(n, "phandle", 0) == phandle)
      return n;
  return -1;
}

// The child of `parent` called `name`: its whole name, or the part before
// the '@' ("memory" finds "memory@80000000"). Returns -1 if there is none.
int fdt_subnode(int parent, const char *name) {
  int depth = 0;
  uint64 n = strlen(name);
  for (int c = fdt_next_node(parent, &depth); c >= 0 && depth > 0;
       c = fdt_next_node(c, &depth)) {
    const char *cn = fdt_name(c);
    if (depth == 1 && strncmp(cn, name, n) == 0 && (cn[n] == 0 || cn[n] == '@'))
      return c;
  }
  return -1;
}

// The parent of `node`, or -1 for the root (or a node deeper than MAXDEPTH).
int fdt_parent(int node) {
  int stack[MAXDEPTH], depth = 0;
  for (int n = fdt_next_node(-1, &depth); n >= 0 && depth >= 0; n = fdt_next_node(n, &depth)) {
    if (depth >= MAXDEPTH)
      continue;
    stack[depth] = n;
    if (n == node)
      return depth > 0 ? stack[depth - 1] : -1;
  }
  return -1;
}

// Reads a number of `cells` u32 cells (1 or 2) at p.
static uint64 cellsval(const uint8 *p, uint32 cells) {
  return cells == 2 ? fdt64(p) : fdt32(p);
}

// The i-th (address, size) pair of the node's reg, sized by its parent's
// #address-cells and #size-cells (defaults 2 and 1). Returns 0 with *base
// and *size set, or -1 if there is no such pair or the cells are not 1 or 2
// (a size of 0 cells reads as size 0).
int fdt_reg(int node, int i, uint64 *base, uint64 *size) {
  int parent = fdt_parent(node), len;
  uint32 ac = fdt_getu32(parent, "#address-cells", 2), sc = fdt_getu32(parent, "#size-cells", 1);
  const uint8 *reg = fdt_getprop(node, "reg", &len);
  if (!reg || ac < 1 || ac > 2 || sc > 2)
    return -1;
  uint32 stride = 4 * (ac + sc);
  if ((uint64)(i + 1) * stride > (uint64)len)
    return -1;
  reg += i * stride;
  *base = cellsval(reg, ac);
  *size = sc ? cellsval(reg + 4 * ac, sc) : 0;
  return 0;
}
