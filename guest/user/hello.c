// hello: greets with its pid and arguments.
#include "user.h"

static char greeting[] = "hello from pid";  // initialized data: a page copied on first touch

int main(int argc, char **argv) {
  greeting[0] = 'h';
  printf("hello: %s %d", greeting, getpid());
  for (int i = 1; i < argc; i++)
    printf(" %s", argv[i]);
  printf("\n");
  return 0;
}
