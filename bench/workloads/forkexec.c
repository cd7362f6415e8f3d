/* forkexec N [PROGRAM]: N times fork, exec PROGRAM (default /bin/true) in
 * the child and wait for it. */
#include "bench.h"
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 1000);
	char *prog = argc > 2 ? argv[2] : "/bin/true";
	struct mark start = start_mark();
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			char *args[] = {prog, NULL};
			execv(prog, args);
			_exit(127);
		}
		int st;
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "forkexec: %s failed\n", prog);
			return 1;
		}
	}
	report(start);
	return 0;
}
