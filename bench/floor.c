/* The ptrace floor: what N stop/resume round trips cost on this machine.
 *
 * A forked child traces itself and runs an endless loop of INT3s; the parent
 * does CALLS blocks of STOPS x (PTRACE_CONT + waitpid for the SIGTRAP) and
 * prints each block's wall time in nanoseconds, one per line. One gocall call
 * is one such block (interrupt stop + the R12 = 0, 1, 16 traps), done from
 * Python, plus the register and memory work around it.
 *
 * usage: floor CALLS STOPS
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

int main(int argc, char **argv) {
	int calls = argc > 1 ? atoi(argv[1]) : 500, stops = argc > 2 ? atoi(argv[2]) : 4, status;
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
