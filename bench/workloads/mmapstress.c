/* mmapstress PASSES: the one-worker mmap stress of issue 18. One worker
 * maps 256 MiB and changes it page by page: each page made read-only and
 * then writable again (the VMA splits in three and merges back), PASSES
 * times over the mapping, which is unmapped and mapped afresh between
 * passes. 2 traced syscalls a page, 131074 a pass, issued as fast as the
 * kernel takes them: what a tracer's consumer must keep up with. */
#include "bench.h"
#include <sys/mman.h>

#define PAGE 4096UL
#define SIZE (256UL << 20)

int main(int argc, char **argv)
{
	long passes = count_arg(argc, argv, 40);
	struct mark start = start_mark();
	for (long p = 0; p < passes; p++) {
		char *base = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		for (unsigned long off = 0; off < SIZE; off += PAGE) {
			if (mprotect(base + off, PAGE, PROT_READ) ||
			    mprotect(base + off, PAGE, PROT_READ | PROT_WRITE)) {
				perror("mprotect");
				return 1;
			}
		}
		if (munmap(base, SIZE)) {
			perror("munmap");
			return 1;
		}
	}
	report(start);
	return 0;
}
