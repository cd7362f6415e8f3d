/* mmaploop N: N times mmap an anonymous page range, munmap it, grow the
 * break by a page and shrink it back: 4 traced syscalls per iteration. */
#include "bench.h"
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 100000);
	unsigned long cur = (unsigned long)syscall(SYS_brk, 0);
	struct mark start = start_mark();
	for (long i = 0; i < n; i++) {
		void *p = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		munmap(p, 16 * 4096);
		syscall(SYS_brk, cur + 4096);
		syscall(SYS_brk, cur);
	}
	report(start);
	return 0;
}
