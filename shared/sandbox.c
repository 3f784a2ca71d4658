/* sandbox: --user (drop root for good) and the sandbox a daemon runs in
 * (Landlock, then a seccomp allow-list), installed on the main thread
 * before any thread exists so that every thread runs under it. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "log.h"
#include "reload.h"
#include "role.h"
#include "sock.h"
#include "upstream.h"

/* -------------------------------------------------------------------------
 * --user */

/* lookup(spec, name, uid, gid, err, errsz): "USER[:GROUP]" into the user's
 * name (for initgroups), uid and the gid to run as. */
static int lookup(const char *spec, char *name, size_t namesz, uid_t *uid, gid_t *gid,
    char *err, size_t errsz)
{
	char buf[16384], user[256];
	const char *colon = strchr(spec, ':');
	size_t ulen = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	int rc;

	if (ulen == 0 || ulen >= sizeof(user) || (colon != NULL && colon[1] == '\0')) {
		snprintf(err, errsz, "--user: %s: expected USER or USER:GROUP", spec);
		return -1;
	}
	memcpy(user, spec, ulen);
	user[ulen] = '\0';
	if ((rc = getpwnam_r(user, &pw, buf, sizeof(buf), &pwp)) != 0 || pwp == NULL) {
		snprintf(err, errsz, "--user: %s: %s", user, rc != 0 ? strerror(rc) : "no such user");
		return -1;
	}
	if (strlen(pw.pw_name) >= namesz) {
		snprintf(err, errsz, "--user: %s: name too long", user);
		return -1;
	}
	strcpy(name, pw.pw_name);
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	if (colon == NULL)
		return 0;
	if ((rc = getgrnam_r(colon + 1, &gr, buf, sizeof(buf), &grp)) != 0 || grp == NULL) {
		snprintf(err, errsz, "--user: %s: %s", colon + 1, rc != 0 ? strerror(rc) : "no such group");
		return -1;
	}
	*gid = gr.gr_gid;
	return 0;
}

int sandbox_user_check(const char *spec, char *err, size_t errsz)
{
	char name[256];
	uid_t uid;
	gid_t gid;

	return spec == NULL ? 0 : lookup(spec, name, sizeof(name), &uid, &gid, err, errsz);
}

int sandbox_user(const char *spec, char *err, size_t errsz)
{
	char name[256];
	uid_t uid;
	gid_t gid;

	if (spec == NULL) {
		if (geteuid() == 0)
			log_warn("running as root: --user USER would drop to USER once the "
			    "listeners are bound", NULL);
		return 0;
	}
	if (lookup(spec, name, sizeof(name), &uid, &gid, err, errsz) < 0)
		return -1;
	if (geteuid() != 0) {
		if (uid == geteuid() && uid == getuid() && gid == getegid())
			return 0;	/* already the user asked for */
		snprintf(err, errsz, "--user: %s: only root can switch to another user "
		    "(running as uid %ld)", spec, (long)geteuid());
		return -1;
	}
	if (initgroups(name, gid) < 0) {
		snprintf(err, errsz, "--user: %s: initgroups: %s", spec, strerror(errno));
		return -1;
	}
	if (setgid(gid) < 0) {
		snprintf(err, errsz, "--user: %s: setgid(%ld): %s", spec, (long)gid, strerror(errno));
		return -1;
	}
	if (setuid(uid) < 0) {
		snprintf(err, errsz, "--user: %s: setuid(%ld): %s", spec, (long)uid, strerror(errno));
		return -1;
	}
	/* For good: no way back to root, real, effective and saved ids all set. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0 || getuid() != uid ||
	    geteuid() != uid || getgid() != gid || getegid() != gid)) {
		snprintf(err, errsz, "--user: %s: root could be taken back after the drop", spec);
		return -1;
	}
	log_info("dropped privileges", "user=%s uid=%ld gid=%ld", name, (long)uid, (long)gid);
	return 0;
}

/* -------------------------------------------------------------------------
 * Landlock: the kernel's uapi, spelled out here so that an older
 * <linux/landlock.h> (Debian 12's knows ABI 1 to 3) still builds it. */

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2
#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_MAKE_REG (1ULL << 8)
#define LL_FS_REFER (1ULL << 13)	/* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14)	/* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15)	/* ABI 5 */
#define LL_NET_BIND_TCP (1ULL << 0)	/* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_SIGNAL (1ULL << 1)	/* ABI 6 */
#define LL_FILE_RIGHTS (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | \
    LL_FS_IOCTL_DEV)
#define LL_RO (LL_FS_READ_FILE | LL_FS_READ_DIR)

struct ll_ruleset_attr {
	uint64_t handled_access_fs, handled_access_net, scoped;
};

struct ll_path_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

struct ll_port_attr {
	uint64_t allowed_access, port;
};

struct ll {
	int fd, abi;
	uint64_t fs;		/* the rights this ABI handles */
};

/* ll_path(ll, path, rights): allow rights beneath path (a file: its file
 * rights only).  A path that does not exist is skipped. */
static int ll_path(struct ll *ll, const char *path, uint64_t rights, char *err, size_t errsz)
{
	struct ll_path_attr a = { .allowed_access = rights & ll->fs };
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		a.allowed_access &= LL_FILE_RIGHTS;
	a.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, ll->fd, LL_RULE_PATH_BENEATH, &a, 0) < 0) {
		snprintf(err, errsz, "sandbox: landlock rule for %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* ll_dir_of(ll, path, rights): allow rights in path's directory and, if
 * path is a symbolic link, in its target's directory as it is now. */
static int ll_dir_of(struct ll *ll, const char *path, uint64_t rights, char *err, size_t errsz)
{
	char dir[PATH_MAX], real[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	if (ll_path(ll, dirname(dir), rights, err, errsz) < 0)
		return -1;
	if (realpath(path, real) != NULL && ll_path(ll, dirname(real), rights, err, errsz) < 0)
		return -1;
	return 0;
}

struct ll_walk {
	struct ll *ll;
	char *err;
	size_t errsz;
	int rc;
};

static void ll_file_cb(const char *path, void *arg)
{
	struct ll_walk *w = arg;

	if (w->rc == 0)
		w->rc = ll_dir_of(w->ll, path, LL_RO, w->err, w->errsz);
}

/* ll_port(ll, port, right): allow right on TCP port. */
static int ll_port(struct ll *ll, long port, uint64_t right, char *err, size_t errsz)
{
	struct ll_port_attr a = { .allowed_access = right, .port = (uint64_t)port };

	if (syscall(SYS_landlock_add_rule, ll->fd, LL_RULE_NET_PORT, &a, 0) < 0) {
		snprintf(err, errsz, "sandbox: landlock rule for port %ld: %s", port, strerror(errno));
		return -1;
	}
	return 0;
}

/* ll_port_of(ll, spec, right): allow right on the port of "host:port". */
static int ll_port_of(struct ll *ll, const char *spec, uint64_t right, char *err, size_t errsz)
{
	char host[256], port[16], *end;
	const char *why;
	long p;

	if (sock_split(spec, host, sizeof(host), port, sizeof(port), &why) < 0) {
		snprintf(err, errsz, "sandbox: %s: %s", spec, why);
		return -1;
	}
	p = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || p < 0 || p > 65535) {
		snprintf(err, errsz, "sandbox: %s: the port must be a number", spec);
		return -1;
	}
	return ll_port(ll, p, right, err, errsz);
}

/* The files getaddrinfo() reads (the resolver thread), the random source
 * wolfSSL reads for each connection's generator, the libraries dlopen()
 * may load (NSS modules, libgcc_s for thread exit). */
static const char *const ll_system_ro[] = {
	"/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/gai.conf",
	"/etc/host.conf", "/etc/ld.so.cache", "/etc/localtime",
	"/dev/urandom", "/dev/random", "/dev/null",
	"/lib", "/lib64", "/usr/lib", "/usr/lib64",
#if defined(__SANITIZE_ADDRESS__)
	"/proc",	/* LeakSanitizer lists /proc/self/task, reads /proc/self/maps */
#endif
};

/* landlock(cfg, t, listen_port, abi, err, errsz): restrict the file system
 * and TCP ports.  0 with *abi = 0 if the kernel has no Landlock. */
static int landlock(const struct config *cfg, const struct tunnel *t, int listen_port,
    int *abi, char *err, size_t errsz)
{
	struct ll_ruleset_attr ra = { 0 };
	struct ll ll = { .fd = -1 };
	struct ll_walk w = { .ll = &ll, .err = err, .errsz = errsz };
	/* What a reload reads again (reload_each_file), and what is read once. */
	const char *files[] = { cfg->config_file, cfg->upstream_shared_key_file,
		cfg->upstream_password_file, cfg->proxy_password_file, getenv("NSS_WRAPPER_HOSTS") };
	size_t rsz = sizeof(uint64_t);
	size_t i;
	int k;

	*abi = 0;
	ll.abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (ll.abi <= 0)
		return 0;
	ll.fs = ((1ULL << 13) - 1) | (ll.abi >= 2 ? LL_FS_REFER : 0) |
	    (ll.abi >= 3 ? LL_FS_TRUNCATE : 0) | (ll.abi >= 5 ? LL_FS_IOCTL_DEV : 0);
	ra.handled_access_fs = ll.fs;
	if (ll.abi >= 4) {
		ra.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		rsz = 2 * sizeof(uint64_t);
	}
	if (ll.abi >= 6) {
		ra.scoped = LL_SCOPE_SIGNAL;	/* not abstract sockets: sd_notify may use one */
		rsz = sizeof(ra);
	}
	if ((ll.fd = (int)syscall(SYS_landlock_create_ruleset, &ra, rsz, 0)) < 0) {
		snprintf(err, errsz, "sandbox: landlock_create_ruleset: %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(files) / sizeof(files[0]) && w.rc == 0; i++)
		if (files[i] != NULL)
			ll_file_cb(files[i], &w);
	if (w.rc == 0)
		reload_each_file(cfg, t->role, ll_file_cb, &w);
	for (i = 0; i < sizeof(ll_system_ro) / sizeof(ll_system_ro[0]) && w.rc == 0; i++)
		w.rc = ll_path(&ll, ll_system_ro[i], LL_RO, err, errsz);
	/* The audit file is created again in its directory after logrotate moved it. */
	if (w.rc == 0 && cfg->audit_file != NULL)
		w.rc = ll_dir_of(&ll, cfg->audit_file, LL_FS_WRITE_FILE | LL_FS_MAKE_REG, err, errsz);
	if (w.rc == 0 && ll.abi >= 4) {
		/* Bind: the listen port only (reach.c listens again on the same
		 * socket).  Connect: the upstreams' ports (or their proxy's), the
		 * audit forward's, and 53 for DNS over TCP. */
		w.rc = ll_port(&ll, listen_port, LL_NET_BIND_TCP, err, errsz);
		for (k = 0; k < t->ups.n && w.rc == 0; k++)
			w.rc = t->ups.v[k].naddr > 0 ?
			    ll_port(&ll, (long)sock_port(&t->ups.v[k].addr[0]), LL_NET_CONNECT_TCP,
			    err, errsz) :
			    ll_port_of(&ll, t->ups.v[k].resolve, LL_NET_CONNECT_TCP, err, errsz);
		if (w.rc == 0 && cfg->audit_forward != NULL)
			w.rc = ll_port_of(&ll, cfg->audit_forward, LL_NET_CONNECT_TCP, err, errsz);
		if (w.rc == 0)
			w.rc = ll_port(&ll, 53, LL_NET_CONNECT_TCP, err, errsz);
	}
	if (w.rc == 0 && syscall(SYS_landlock_restrict_self, ll.fd, 0) < 0) {
		snprintf(err, errsz, "sandbox: landlock_restrict_self: %s", strerror(errno));
		w.rc = -1;
	}
	close(ll.fd);
	*abi = ll.abi;
	return w.rc;
}

/* -------------------------------------------------------------------------
 * seccomp: the system calls both daemons make, with glibc, libev, wolfSSL,
 * libmsgpack, zlib/zstd and getaddrinfo(); any other fails with EPERM and
 * is logged. */

static const char *const sc_allowed[] = {
	/* files and descriptors */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close",
	"open", "openat", "openat2", "fstat", "newfstatat", "stat", "lstat", "statx", "fstatfs",
	"access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents", "getdents64", "fcntl",
	"dup", "dup2", "dup3", "pipe", "pipe2", "ioctl", "fsync", "fdatasync", "ftruncate",
	"getcwd", "umask", "close_range",
	"inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	/* memory */
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mlock", "munlock",
	/* events, time */
	"poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
	"epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd",
	"signalfd4", "timerfd_create", "timerfd_settime", "timerfd_gettime",
	"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
	/* sockets */
	"socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "shutdown",
	"getsockname", "getpeername", "setsockopt", "getsockopt", "sendto", "recvfrom",
	"sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
	/* threads, signals, process */
	"clone", "clone3", "futex", "futex_waitv", "set_robust_list", "get_robust_list", "rseq",
	"set_tid_address", "exit", "exit_group", "sched_yield", "sched_getaffinity",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack",
	"tgkill", "tkill", "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
	"getegid", "getgroups", "getrlimit", "prlimit64", "getrusage", "uname", "sysinfo",
	"getrandom", "membarrier", "restart_syscall", "prctl", "arch_prctl",
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer's check at exit stops the threads with ptrace from a
	 * clone()d tracer; only in the sanitizer build (make check). */
	"ptrace", "wait4", "waitid", "kill", "process_vm_readv", "personality",
#endif
};

/* sigsys(): a denied system call (SCMP_ACT_TRAP): log it and make it fail
 * with EPERM as though the filter had returned that. */
static void sigsys(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	int e = errno;

	(void)sig;
	log_error("system call denied by the sandbox; it fails with EPERM (--no-sandbox "
	    "turns the sandbox off; please report it)", "syscall=%d", si->si_syscall);
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (unsigned long long)-EPERM;
#endif
	errno = e;
}

static int seccomp(char *err, size_t errsz)
{
#if defined(__x86_64__) || defined(__aarch64__)
	const uint32_t deny = SCMP_ACT_TRAP;
	struct sigaction sa;
#else
	const uint32_t deny = SCMP_ACT_ERRNO(EPERM);
#endif
	scmp_filter_ctx ctx;
	size_t i;
	int nr, rc = 0;

#if defined(__x86_64__) || defined(__aarch64__)
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigsys;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		snprintf(err, errsz, "sandbox: sigaction(SIGSYS): %s", strerror(errno));
		return -1;
	}
#endif
	if ((ctx = seccomp_init(deny)) == NULL) {
		snprintf(err, errsz, "sandbox: seccomp_init failed");
		return -1;
	}
	for (i = 0; i < sizeof(sc_allowed) / sizeof(sc_allowed[0]) && rc == 0; i++)
		if ((nr = seccomp_syscall_resolve_name(sc_allowed[i])) != __NR_SCMP_ERROR &&
		    nr >= 0)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	/* Every thread, should one exist (none does yet). */
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0) {
		snprintf(err, errsz, "sandbox: seccomp: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

int sandbox_enter(const struct config *cfg, const struct tunnel *t, int listen_port,
    char *err, size_t errsz)
{
	int abi;

	if (!cfg->sandbox) {
		log_info("sandbox off (--no-sandbox)", NULL);
		return 0;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errsz, "sandbox: no_new_privs: %s", strerror(errno));
		return -1;
	}
	if (landlock(cfg, t, listen_port, &abi, err, errsz) < 0 || seccomp(err, errsz) < 0)
		return -1;
	if (abi == 0)
		log_info("sandbox on: seccomp only, the kernel has no Landlock", NULL);
	else
		log_info("sandbox on: Landlock and seccomp", "landlock_abi=%d", abi);
	return 0;
}
