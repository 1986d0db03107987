// The parts of the ELF-64 format the program loader reads.
#pragma once
#include "types.h"

#define ELF_MAGIC 0x464C457FU  // "\x7FELF" as a little-endian u32
#define ELFCLASS64 2
#define EM_RISCV 243

struct elfhdr {
  uint32 magic;
  uint8 ident[12];  // ident[0] = class
  uint16 type, machine;
  uint32 version;
  uint64 entry, phoff, shoff;
  uint32 flags;
  uint16 ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

#define PT_LOAD 1
#define PF_X 1
#define PF_W 2
#define PF_R 4

struct proghdr {
  uint32 type, flags;
  uint64 off, vaddr, paddr, filesz, memsz, align;
};
