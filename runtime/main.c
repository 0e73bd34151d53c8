/* main.c - the `rbee` command; everything it does is in cli_main.c, so the
 * tests can run the whole command in-process. The version is compiled in
 * here alone, so a new commit relinks rbee, not every test. */
#include "cli.h"
#include "version.h" /* RB_VERSION, made by the Makefile */

int main(int argc, char **argv) { return cli_main(argc, argv, RB_VERSION); }
