/* burst P N: P processes at once, each N times mmap and munmap a range of
 * BURST_LEN bytes (a length nothing else uses, so the harness can count
 * exactly these calls in mmtrace's output). */
#include "bench.h"
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define BURST_LEN (7 * 4096)

int main(int argc, char **argv)
{
	long procs = count_arg(argc, argv, 4);
	long n = count_arg(argc - 1, argv + 1, 200000);
	struct mark start = start_mark();
	for (long p = 0; p < procs; p++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			for (long i = 0; i < n; i++) {
				void *m = mmap(NULL, BURST_LEN, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				if (m == MAP_FAILED)
					_exit(1);
				munmap(m, BURST_LEN);
			}
			_exit(0);
		}
	}
	int failed = 0, st;
	while (wait(&st) > 0)
		failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	report(start);
	return failed;
}
