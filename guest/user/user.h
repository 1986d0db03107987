// The user-side library: system calls (usys.S), strings (ulib.c),
// printf (printf.c), malloc/free (umalloc.c).
#pragma once
#include "../kernel/syscall.h"

typedef unsigned long size_t;
#define NULL ((void *)0)
#define PGSIZE 4096UL

// System calls: -1 on error (sbrk: (char *)-1).
int write(int fd, const void *buf, long n);
void exit(int status) __attribute__((noreturn));
int wait(int *status);
int getpid(void);
char *sbrk(long n);
int yield(void);
int sleep(long ms);
int spawn(const char *name, char **argv);
long uptime(void);  // virtual ns since boot
int meminfo(struct meminfo *mi);
long syscall(long n, long a0, long a1, long a2);  // raw: number n, three arguments

// ulib.c
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strcpy(char *dst, const char *src);
char *strchr(const char *s, int c);
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
long atol(const char *s);
const char *argval(int argc, char **argv, const char *key);
int run(const char *name, char **argv);
int runline(char *line);

// printf.c: %d %u %x %p %s %c %%, width, 0 padding, l.
int printf(const char *fmt, ...);
int fprintf(int fd, const char *fmt, ...);
int snprintf(char *buf, size_t size, const char *fmt, ...);

// umalloc.c
void *malloc(size_t n);
void free(void *p);
