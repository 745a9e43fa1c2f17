// fdstore-supervisor: a stand-in for systemd's fd store and Restart=on-failure, for failover tests.
//
// Usage: fdstore-supervisor [--restarts N] [--notify-socket PATH] -- COMMAND [ARG...]
//
// Binds an AF_UNIX datagram socket, runs COMMAND with NOTIFY_SOCKET pointing at it, and speaks the parts of
// sd_notify(3) a service uses: READY=1, STATUS=, WATCHDOG=1, STOPPING=1, and FDSTORE=1 + FDNAME= with
// descriptors attached as SCM_RIGHTS, which it keeps. When COMMAND dies from a signal or exits non-zero it is
// started again (at most N times, default 3) with the stored descriptors passed the systemd way:
// fds 3.. plus LISTEN_FDS, LISTEN_PID (the child's own pid) and LISTEN_FDNAMES. Exits with COMMAND's status
// once it exits 0 or restarts are used up. SIGTERM/SIGINT are forwarded to the child.
// Prints "@@SUPERVISOR <event> ..." lines on stderr for tests to follow.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_STORED 16

static int stored_fd[MAX_STORED];
static char stored_name[MAX_STORED][256];
static int n_stored;
static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t got_term;

static void on_term(int sig) {
	got_term = 1;
	if (child_pid > 0) kill(child_pid, sig);
}

static void store(const char *name, int fd) {
	for (int i = 0; i < n_stored; i++) {
		if (strcmp(stored_name[i], name) == 0) { // same name replaces, as systemd does
			close(stored_fd[i]);
			stored_fd[i] = fd;
			fprintf(stderr, "@@SUPERVISOR stored name=%s (replaced)\n", name);
			return;
		}
	}
	if (n_stored == MAX_STORED) { close(fd); return; }
	snprintf(stored_name[n_stored], sizeof stored_name[0], "%s", name);
	stored_fd[n_stored++] = fd;
	fprintf(stderr, "@@SUPERVISOR stored name=%s\n", name);
}

static void handle_message(int sock) {
	char buf[4096];
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = { buf, sizeof buf - 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0) return;
	buf[n] = 0;
	int fds[8], nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (int i = 0; i < k && nfds < 8; i++) memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
		}
	}
	int fdstore = 0;
	char name[256] = "stored";
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (strcmp(line, "FDSTORE=1") == 0) fdstore = 1;
		else if (strncmp(line, "FDNAME=", 7) == 0) snprintf(name, sizeof name, "%s", line + 7);
		else if (strcmp(line, "READY=1") == 0) fprintf(stderr, "@@SUPERVISOR ready pid=%d\n", (int)child_pid);
		else if (strncmp(line, "STATUS=", 7) == 0) fprintf(stderr, "@@SUPERVISOR status %s\n", line + 7);
		else if (strcmp(line, "WATCHDOG=1") == 0) fprintf(stderr, "@@SUPERVISOR watchdog\n");
		else if (strcmp(line, "STOPPING=1") == 0) fprintf(stderr, "@@SUPERVISOR stopping\n");
	}
	for (int i = 0; i < nfds; i++) {
		if (fdstore && i == 0) store(name, fds[i]);
		else close(fds[i]);
	}
}

static pid_t spawn(char **argv, const char *notify_path) {
	pid_t pid = fork();
	if (pid != 0) return pid;
	// child: stored fds become 3.. (dup first to a high range so the moves cannot clobber each other)
	int high[MAX_STORED];
	for (int i = 0; i < n_stored; i++) high[i] = fcntl(stored_fd[i], F_DUPFD, 100 + MAX_STORED);
	for (int i = 0; i < n_stored; i++) {
		dup2(high[i], 3 + i); // dup2 clears FD_CLOEXEC on the new fd
		close(high[i]);
	}
	setenv("NOTIFY_SOCKET", notify_path, 1);
	if (n_stored > 0) {
		char num[32], names[MAX_STORED * 257] = "";
		snprintf(num, sizeof num, "%d", n_stored);
		setenv("LISTEN_FDS", num, 1);
		snprintf(num, sizeof num, "%d", (int)getpid());
		setenv("LISTEN_PID", num, 1);
		for (int i = 0; i < n_stored; i++) {
			if (i) strcat(names, ":");
			strcat(names, stored_name[i]);
		}
		setenv("LISTEN_FDNAMES", names, 1);
	} else {
		unsetenv("LISTEN_FDS"); unsetenv("LISTEN_PID"); unsetenv("LISTEN_FDNAMES");
	}
	execvp(argv[0], argv);
	perror("exec");
	_exit(127);
}

int main(int argc, char **argv) {
	int restarts = 3, i = 1;
	char notify_path[108];
	snprintf(notify_path, sizeof notify_path, "/run/fdstore-supervisor.%d.sock", (int)getpid());
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--restarts") == 0 && i + 1 < argc) restarts = atoi(argv[++i]);
		else if (strcmp(argv[i], "--notify-socket") == 0 && i + 1 < argc) snprintf(notify_path, sizeof notify_path, "%s", argv[++i]);
		else if (strcmp(argv[i], "--") == 0) { i++; break; }
		else break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [--restarts N] [--notify-socket PATH] -- COMMAND [ARG...]\n", argv[0]);
		return 2;
	}
	int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof addr.sun_path, "%s", notify_path);
	unlink(notify_path);
	if (sock < 0 || bind(sock, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("notify socket"); return 1; }
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int status = 0;
	for (int run = 0;; run++) {
		child_pid = spawn(argv + i, notify_path);
		if (child_pid < 0) { perror("fork"); return 1; }
		fprintf(stderr, "@@SUPERVISOR started pid=%d run=%d stored=%d\n", (int)child_pid, run, n_stored);
		for (;;) {
			struct pollfd p = { sock, POLLIN, 0 };
			int r = poll(&p, 1, 100);
			if (r > 0) handle_message(sock);
			pid_t w = waitpid(child_pid, &status, WNOHANG);
			if (w == child_pid) break;
		}
		while (poll(&(struct pollfd){ sock, POLLIN, 0 }, 1, 0) > 0) handle_message(sock); // drain late messages
		int failed = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
		if (WIFSIGNALED(status)) fprintf(stderr, "@@SUPERVISOR died pid=%d signal=%d\n", (int)child_pid, WTERMSIG(status));
		else fprintf(stderr, "@@SUPERVISOR exited pid=%d status=%d\n", (int)child_pid, WEXITSTATUS(status));
		if (!failed || got_term || run >= restarts) break;
		fprintf(stderr, "@@SUPERVISOR restart\n");
	}
	unlink(notify_path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
