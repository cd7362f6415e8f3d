/* vmachurn ROUNDS VMAS: make about VMAS mappings (every other page of one
 * anonymous mapping read-only), then ROUNDS times munmap a pseudo-random
 * page among them and map it again with MAP_FIXED and its old protection,
 * so the count stays the same: 2 traced syscalls a round, each landing in
 * the middle of a large address space (issue 18). More than
 * vm.max_map_count mappings need the sysctl raised first. */
#include "bench.h"
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL

int main(int argc, char **argv)
{
	long rounds = count_arg(argc, argv, 20000);
	long vmas = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
	if (vmas < 2) {
		fprintf(stderr, "%s: want at least 2 VMAs\n", argv[0]);
		return 2;
	}
	char *base = mmap(NULL, vmas * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (long i = 1; i < vmas; i += 2) {
		if (mprotect(base + i * PAGE, PAGE, PROT_READ)) {
			perror("mprotect (raise vm.max_map_count?)");
			return 1;
		}
	}
	unsigned long long rng = 1;
	struct mark start = start_mark();
	for (long r = 0; r < rounds; r++) {
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		long i = (long)((rng >> 33) % (unsigned long long)vmas);
		char *p = base + i * PAGE;
		int prot = i % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
		if (munmap(p, PAGE) ||
		    mmap(p, PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
			perror("munmap/mmap");
			return 1;
		}
	}
	report(start);
	return 0;
}
