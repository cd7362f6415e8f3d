/* getppid N: N getppid system calls, the cheapest syscall there is, to
 * show what a tracer costs processes it does not trace. */
#include "bench.h"
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 1000000);
	struct mark start = start_mark();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	report(start);
	return 0;
}
