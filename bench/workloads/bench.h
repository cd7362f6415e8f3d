/* Shared by the benchmark workloads: an iteration count from argv and a
 * self-measured loop time, so a tracer's attach and teardown are not
 * counted against the traced loop. */
#ifndef BENCH_H
#define BENCH_H
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static long count_arg(int argc, char **argv, long dflt)
{
	if (argc < 2)
		return dflt;
	char *end;
	long n = strtol(argv[1], &end, 10);
	if (*end || n <= 0) {
		fprintf(stderr, "%s: iteration count %s is not a positive number\n", argv[0], argv[1]);
		exit(2);
	}
	return n;
}

static unsigned long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (unsigned long long)t.tv_sec * 1000000000ULL + (unsigned long long)t.tv_nsec;
}

static unsigned long long tv_ns(struct timeval t)
{
	return (unsigned long long)t.tv_sec * 1000000000ULL + (unsigned long long)t.tv_usec * 1000ULL;
}

/* CPU time of this process and its reaped children (a child's exec runs
 * tracer programs on the child's account). */
static unsigned long long cpu_ns(void)
{
	struct rusage self, kids;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	return tv_ns(self.ru_utime) + tv_ns(self.ru_stime) + tv_ns(kids.ru_utime) + tv_ns(kids.ru_stime);
}

struct mark {
	unsigned long long wall, cpu;
};

static struct mark start_mark(void)
{
	struct mark m = {now_ns(), cpu_ns()};
	return m;
}

/* The lines the harness reads from stdout: the loop's wall time, and the
 * CPU time it used (the difference is time spent waiting for a CPU). */
static void report(struct mark start)
{
	unsigned long long cpu = cpu_ns() - start.cpu;
	printf("elapsed_ns=%llu\ncpu_ns=%llu\n", now_ns() - start.wall, cpu);
	fflush(stdout);
}
#endif
