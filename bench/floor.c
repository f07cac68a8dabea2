/* The ptrace floor: what N stop/resume round trips cost on this machine.
 *
 * trap mode: a forked child traces itself and runs an endless loop of INT3s;
 * each block is STOPS x (PTRACE_CONT + waitpid for the SIGTRAP). Tracer and
 * tracee mostly share a CPU: the lowest cost there is.
 *
 * seize mode: the child spins in user code, like a Go worker; each block is
 * what gocall's ptrace pattern costs without its Python and register work:
 * PTRACE_SEIZE, STOPS x (PTRACE_INTERRUPT + waitpid + PTRACE_CONT), with the
 * last resume a PTRACE_DETACH. The spinning child runs on the other CPU, so
 * every stop is a cross-CPU interrupt and every wait a wake-up.
 *
 * Prints each block's wall time in nanoseconds, one per line. One gocall call
 * is one block of 4 stops (the interrupt that finds the goroutine, then the
 * R12 = 0, 1, 16 traps).
 *
 * usage: floor trap|seize CALLS STOPS
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void round_trip(pid_t pid) {
	int status;
	if (ptrace(PTRACE_CONT, pid, 0, 0) != 0 || waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
		perror("round trip");
		exit(1);
	}
}

static void check(long rc, const char *what) {
	if (rc != 0) {
		perror(what);
		exit(1);
	}
}

static void stop(pid_t pid) {
	int status;
	check(ptrace(PTRACE_INTERRUPT, pid, 0, 0), "PTRACE_INTERRUPT");
	if (waitpid(pid, &status, __WALL) != pid || !WIFSTOPPED(status)) {
		perror("waitpid");
		exit(1);
	}
}

static int seize_mode(int calls, int stops) {
	int status;
	pid_t pid = fork();
	if (pid == 0)
		for (volatile unsigned long n = 0;; n++)
			;
	for (int i = 0; i < calls + 100; i++) { /* the first 100 warm up */
		long long t0 = now_ns();
		check(ptrace(PTRACE_SEIZE, pid, 0, 0), "PTRACE_SEIZE");
		for (int s = 0; s < stops; s++) {
			stop(pid);
			if (s < stops - 1)
				check(ptrace(PTRACE_CONT, pid, 0, 0), "PTRACE_CONT");
		}
		check(ptrace(PTRACE_DETACH, pid, 0, 0), "PTRACE_DETACH");
		if (i >= 100)
			printf("%lld\n", now_ns() - t0);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return 0;
}

int main(int argc, char **argv) {
	int calls = argc > 2 ? atoi(argv[2]) : 500, stops = argc > 3 ? atoi(argv[3]) : 4, status;
	if (argc > 1 && strcmp(argv[1], "seize") == 0)
		return seize_mode(calls, stops);
	pid_t pid = fork();
	if (pid == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		for (;;)
			__asm__ volatile("int3");
	}
	waitpid(pid, &status, 0); /* the SIGSTOP */
	for (int i = 0; i < 100; i++) /* warm up */
		round_trip(pid);
	for (int i = 0; i < calls; i++) {
		long long t0 = now_ns();
		for (int s = 0; s < stops; s++)
			round_trip(pid);
		printf("%lld\n", now_ns() - t0);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return 0;
}
