/*
 * agora-init: the native containerizer's container init as a small static
 * C program. It speaks the protocol of package containerinit (protocol.go,
 * containerinit.go, beneath.go, enter.go) and behaves as the Go init does,
 * error texts included; the Go init stays the fallback (/proc/self/exe), so
 * the two must not drift apart: a change to one is a change to both.
 *
 * Why C: every isolated launch starts an init, and a Go program pays for
 * its runtime's start (threads, page faults, probing its cgroup) before
 * the init can do anything; this program starts several times cheaper.
 *
 * Built by `make build` as bin/agora-init, with musl where it is installed
 * (its start-up does not probe the CPU, whose cpuid instructions trap to
 * the hypervisor on a virtual machine), else with glibc:
 *   musl-gcc -std=c11 -O2 -Wall -Wextra -Werror -static -s -o bin/agora-init agora-init.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CONFIG_FD 3
#define STATUS_FD 4
#define FRAME_DIGITS 10
#define GO_BYTE 'g'

/* ---- error texts ---- */

/*
 * errtext is errno e as Go's syscall.Errno prints it: the glibc text with
 * its first letter in lower case (Go's table is made that way). The common
 * ones are spelled out so they do not depend on the C library's wording.
 */
static const char *errtext(int e)
{
	static char buf[128];
	switch (e) {
	case ENOENT: return "no such file or directory";
	case EACCES: return "permission denied";
	case EPERM: return "operation not permitted";
	case ENOTDIR: return "not a directory";
	case ELOOP: return "too many levels of symbolic links";
	case EINVAL: return "invalid argument";
	case ENOEXEC: return "exec format error";
	case EEXIST: return "file exists";
	case EBUSY: return "device or resource busy";
	case EISDIR: return "is a directory";
	case ENOMEM: return "cannot allocate memory";
	case ENOSPC: return "no space left on device";
	case EROFS: return "read-only file system";
	case ETXTBSY: return "text file busy";
	case ENAMETOOLONG: return "file name too long";
	case ESRCH: return "no such process";
	case ECHILD: return "no child processes";
	case EIO: return "input/output error";
	}
	const char *s = strerror(e);
	snprintf(buf, sizeof buf, "%s", s ? s : "unknown error");
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

/* The error being reported, as Go's errors.New(...).Error() would read. */
static char errbuf[16384];

/* fail sets the error text (printf format) and returns -1. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * quote is s as Go's strconv.Quote prints it for the texts seen here
 * (printable ASCII as is; quotes, backslashes and control bytes escaped;
 * other bytes, UTF-8, passed on). It returns one of two buffers in turn.
 */
static const char *quote(const char *s)
{
	static char bufs[2][4200];
	static int turn;
	char *b = bufs[turn], *end = b + sizeof bufs[0] - 8;
	turn ^= 1;
	char *o = b;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p && o < end; p++) {
		unsigned char c = *p;
		const char *esc = NULL;
		switch (c) {
		case '\a': esc = "\\a"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\v': esc = "\\v"; break;
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		}
		if (esc) {
			o += sprintf(o, "%s", esc);
		} else if (c < 0x20 || c == 0x7f) {
			o += sprintf(o, "\\x%02x", c);
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = '"';
	*o = 0;
	return b;
}

/* ---- the pipes and messages ---- */

/* write_all writes n bytes of b to fd (the agent may be gone: ignored). */
static int write_all(int fd, const char *b, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static void report(const char *line) { (void)write_all(STATUS_FD, line, strlen(line)); }

/* report_error sends "error TEXT", the text on one line. Returns 1. */
static int report_error(void)
{
	static char line[sizeof errbuf + 8];
	snprintf(line, sizeof line, "error %s", errbuf);
	for (char *p = line; *p; p++)
		if (*p == '\n')
			*p = ' ';
	strcat(line, "\n");
	report(line);
	return 1;
}

/* read_full reads exactly n bytes from fd; -1 on EOF or error. */
static int read_full(int fd, char *b, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* is_fifo reports whether fd is open on a pipe. */
static int is_fifo(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/*
 * parse_int is Go's strconv.Atoi for s[0:n]: an optional sign and decimal
 * digits. Returns 0 on success.
 */
static int parse_int(const char *s, size_t n, long long *out)
{
	size_t i = 0;
	int neg = 0;
	if (n > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return -1;
	long long v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (LLONG_MAX - 9) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = neg ? -v : v;
	return 0;
}

/*
 * read_frame reads the configuration: FRAME_DIGITS digits of length, a
 * newline, the bytes; never a byte past them (the go byte follows).
 */
static char *read_frame(size_t *size)
{
	char header[FRAME_DIGITS + 1];
	long long n;
	if (read_full(CONFIG_FD, header, sizeof header) < 0)
		return NULL;
	if (parse_int(header, FRAME_DIGITS, &n) < 0 || n <= 0 || header[FRAME_DIGITS] != '\n')
		return NULL;
	char *b = malloc((size_t)n + 1);
	if (!b || read_full(CONFIG_FD, b, (size_t)n) < 0)
		return NULL;
	b[n] = 0;
	*size = (size_t)n;
	return b;
}

/* ---- the configuration (containerinit.Config) ---- */

struct config {
	const char *path;
	char **args, **env;
	int has_uid;
	uint32_t uid, gid;
	gid_t *groups;
	size_t nargs, nenv, ngroups;
	const char *sandbox;
	int sandbox_in_tmp;
	const char *tmp;
	const char **keep, **ro;
	size_t nkeep, nro;
	const char *agent_mount_ns;
	const char *exit_file;
	const char **cgroup; /* cgroup v1 tasks files to join ('c') */
	size_t ncgroup;
};

/* parse_id is strconv.ParseUint(v, 10, 32); on error it sets the text. */
static int parse_id(const char *v, uint32_t *out, const char **why)
{
	uint64_t n = 0;
	int overflow = 0;
	if (!*v) {
		*why = "invalid syntax";
		return -1;
	}
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9') {
			*why = "invalid syntax";
			return -1;
		}
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > UINT32_MAX)
			overflow = 1, n = UINT32_MAX + 1ULL;
	}
	if (overflow) {
		*why = "value out of range";
		return -1;
	}
	*out = (uint32_t)n;
	return 0;
}

/*
 * decode_config reads the NUL-terminated fields of b (a one-letter tag and
 * a value each) as containerinit's decodeConfig does; the values stay in b.
 */
static int decode_config(char *b, size_t size, struct config *c)
{
	size_t fields = 0;
	for (size_t i = 0; i < size; i++)
		fields += b[i] == 0;
	memset(c, 0, sizeof *c);
	c->path = c->sandbox = c->tmp = c->agent_mount_ns = c->exit_file = "";
	c->args = calloc(fields + 1, sizeof *c->args);
	c->env = calloc(fields + 1, sizeof *c->env);
	c->groups = calloc(fields + 1, sizeof *c->groups);
	c->keep = calloc(fields + 1, sizeof *c->keep);
	c->ro = calloc(fields + 1, sizeof *c->ro);
	c->cgroup = calloc(fields + 1, sizeof *c->cgroup);
	if (!c->args || !c->env || !c->groups || !c->keep || !c->ro || !c->cgroup)
		return fail("container init: %s", errtext(ENOMEM));
	size_t off = 0;
	while (off < size) {
		size_t end = off;
		while (end < size && b[end] != 0)
			end++;
		if (end == size || end == off)
			return fail("container init: malformed configuration");
		char tag = b[off], *v = b + off + 1;
		off = end + 1;
		const char *why = NULL;
		uint32_t id;
		switch (tag) {
		case 'p': c->path = v; break;
		case 'a': c->args[c->nargs++] = v; break;
		case 'e': c->env[c->nenv++] = v; break;
		case 'u':
			c->has_uid = 1;
			if (parse_id(v, &id, &why) == 0)
				c->uid = id;
			break;
		case 'g':
			if (parse_id(v, &id, &why) == 0)
				c->gid = id;
			break;
		case 'G':
			if (parse_id(v, &id, &why) == 0)
				c->groups[c->ngroups++] = id;
			break;
		case 's': c->sandbox = v; break;
		case 'S': c->sandbox_in_tmp = 1; break;
		case 't': c->tmp = v; break;
		case 'k': c->keep[c->nkeep++] = v; break;
		case 'r': c->ro[c->nro++] = v; break;
		case 'm': c->agent_mount_ns = v; break;
		case 'x': c->exit_file = v; break;
		case 'c': c->cgroup[c->ncgroup++] = v; break;
		default: {
			/* Go quotes string(tag): the byte as a rune. */
			char t[3] = {tag, 0, 0};
			unsigned char u = (unsigned char)tag;
			if (u >= 0x80) {
				t[0] = (char)(0xc0 | (u >> 6));
				t[1] = (char)(0x80 | (u & 0x3f));
			}
			return fail("container init: unknown configuration field %s", quote(t));
		}
		}
		if (why)
			return fail("container init: bad configuration field %c: strconv.ParseUint: parsing %s: %s", tag,
				    quote(v), why);
	}
	if (!*c->path)
		return fail("container init: no program to run");
	return 0;
}

/* ---- the mounts (setupMounts, beneath.go) ---- */

static int in_tmp(const char *p) { return strcmp(p, "/tmp") == 0 || strncmp(p, "/tmp/", 5) == 0; }

static void fd_path(char *buf, size_t n, int fd) { snprintf(buf, n, "/proc/self/fd/%d", fd); }

static void close_fd(int fd)
{
	if (fd >= 0)
		close(fd);
}

static int same_file(int a, int b)
{
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* isolated: a mount namespace other than the agent's, and pid 1. */
static int isolated(const char *agent_mount_ns)
{
	char ns[256];
	ssize_t n = readlink("/proc/self/ns/mnt", ns, sizeof ns - 1);
	if (n >= 0)
		ns[n] = 0;
	if (n < 0 || !*agent_mount_ns || strcmp(ns, agent_mount_ns) == 0)
		return fail("the container init is not in a mount namespace of its own; refusing to mount anything");
	if (getpid() != 1)
		return fail("the container init is not pid 1 of a new pid namespace; refusing to mount anything");
	return 0;
}

static int do_mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data,
		    const char *what)
{
	if (mount(src, target, fstype, flags, data) != 0)
		return fail("%s: %s", what, errtext(errno));
	return 0;
}

/*
 * remount_read_only makes the bind mount whose root is open at fd
 * read-only, keeping its nosuid, nodev, noexec and atime flags (a bind
 * remount sets them all anew).
 */
static int remount_read_only(int fd, const char *path)
{
	struct statfs sfs;
	char p[64];
	if (fstatfs(fd, &sfs) != 0)
		return fail("statfs %s: %s", path, errtext(errno));
	/* statfs(2)'s f_flags bits (ST_*, which <sys/statvfs.h> names). */
	enum { ST_NOSUID_ = 0x2, ST_NODEV_ = 0x4, ST_NOEXEC_ = 0x8, ST_NOATIME_ = 0x400, ST_NODIRATIME_ = 0x800,
	       ST_RELATIME_ = 0x1000 };
	static const struct {
		long st;
		unsigned long ms;
	} keep[] = {
		{ST_NOSUID_, MS_NOSUID},	    {ST_NODEV_, MS_NODEV},	    {ST_NOEXEC_, MS_NOEXEC},
		{ST_NOATIME_, MS_NOATIME}, {ST_NODIRATIME_, MS_NODIRATIME}, {ST_RELATIME_, MS_RELATIME},
	};
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
	for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
		if (sfs.f_flags & keep[i].st)
			flags |= keep[i].ms;
	fd_path(p, sizeof p, fd);
	if (mount("", p, "", flags, "") != 0)
		return fail("remount %s read-only: %s", path, errtext(errno));
	return 0;
}

/* bind_read_only binds directory path read-only over itself. */
static int bind_read_only(const char *path)
{
	char p[64];
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail("open: %s", errtext(errno));
	fd_path(p, sizeof p, fd);
	if (mount(p, p, "", MS_BIND | MS_REC, "") != 0) {
		int e = errno;
		close(fd);
		return fail("bind it over itself: %s", errtext(e));
	}
	int root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		int e = errno;
		close(fd);
		return fail("open once bound: %s", errtext(e));
	}
	int rc = same_file(root, fd) ? remount_read_only(root, path) : fail("changed while it was bound");
	close(root);
	close(fd);
	return rc;
}

/*
 * open_dir_no_follow opens name in dirfd as an O_PATH descriptor, only if
 * it is a directory and not a link to one; -1 with errno otherwise.
 */
static int open_dir_no_follow(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	int e = fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
	if (e != 0) {
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * walk_no_symlinks opens absolute path as an O_PATH directory component by
 * component from the root, never following a symbolic link; with create,
 * missing directories are made (0755). Once /tmp is the sandbox's, what
 * lies below it is the framework's, and the init runs as root: it never
 * resolves such a path by name. Sets *parent and *out (the caller closes
 * both).
 */
static int walk_no_symlinks(const char *path, int create, int *parent, int *out)
{
	*parent = *out = -1;
	if (path[0] != '/')
		return fail("%s is not an absolute path", quote(path));
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail("open /: %s", errtext(errno));
	int par = -1;
	size_t len = strlen(path);
	char *walked = malloc(len + 2), *name = malloc(len + 1);
	if (!walked || !name) {
		close_fd(fd);
		return fail("walk %s: %s", path, errtext(ENOMEM));
	}
	size_t wlen = 0;
	walked[0] = 0;
	int rc = 0;
	for (size_t i = 0; i < len;) {
		while (i < len && path[i] == '/')
			i++;
		size_t start = i;
		while (i < len && path[i] != '/')
			i++;
		if (i == start)
			break;
		memcpy(name, path + start, i - start);
		name[i - start] = 0;
		walked[wlen++] = '/';
		memcpy(walked + wlen, name, i - start + 1);
		wlen += i - start;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
			rc = fail("%s: refusing the component %s", path, quote(name));
			break;
		}
		int next = open_dir_no_follow(fd, name);
		int e = errno;
		if (next < 0 && e == ENOENT && create) {
			if (mkdirat(fd, name, 0755) == 0 || errno == EEXIST) {
				next = open_dir_no_follow(fd, name);
				e = errno;
			} else {
				e = errno;
			}
		}
		if (next < 0) {
			char link[PATH_MAX + 1], lp[64 + NAME_MAX];
			snprintf(lp, sizeof lp, "/proc/self/fd/%d/%s", fd, name);
			ssize_t n = readlink(lp, link, sizeof link - 1);
			if (n >= 0) {
				link[n] = 0;
				rc = fail("%s is a symbolic link (to %s); refusing to follow it", walked, link);
			} else {
				rc = fail("open %s: %s", walked, errtext(e));
			}
			break;
		}
		close_fd(par);
		par = fd;
		fd = next;
	}
	free(walked);
	free(name);
	if (rc != 0) {
		close_fd(par);
		close_fd(fd);
		return rc;
	}
	*parent = par;
	*out = fd;
	return 0;
}

/*
 * mount_back bind-mounts the directory open at src on path, below the new
 * /tmp, creating path's missing directories but following no link on the
 * way; read_only mounts it read-only.
 */
static int mount_back(int src, const char *path, int read_only)
{
	int parent, fd;
	char s[64], d[64];
	if (walk_no_symlinks(path, 1, &parent, &fd) != 0)
		return -1;
	fd_path(s, sizeof s, src);
	fd_path(d, sizeof d, fd);
	int rc = 0;
	if (mount(s, d, "", MS_BIND | MS_REC, "") != 0) {
		rc = fail("mount %s back: %s", path, errtext(errno));
	} else if (read_only) {
		/* fd holds the directory now covered; the name, looked up again
		 * in the parent, leads to the new mount's root. */
		size_t n = strlen(path);
		while (n > 1 && path[n - 1] == '/')
			n--;
		char *name = strndup(path, n);
		const char *last = name ? strrchr(name, '/') : NULL;
		int root = last ? open_dir_no_follow(parent, last + 1) : -1;
		if (root < 0)
			rc = fail("open %s once mounted: %s", path, errtext(name ? errno : ENOMEM));
		else if (!same_file(root, src))
			rc = fail("%s changed while it was mounted back", path);
		else
			rc = remount_read_only(root, path);
		close_fd(root);
		free(name);
	}
	close_fd(parent);
	close_fd(fd);
	return rc;
}

static int contains(const char **list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

struct back {
	const char *path, *what;
	int fd;
};

/* keep_back opens a directory below /tmp to mount it back later. */
static int keep_back(struct back *b, size_t *n, const char *path, const char *what)
{
	if (!in_tmp(path) || strcmp(path, "/tmp") == 0)
		return fail("%s %s is not a directory below /tmp; refusing to mount it back over /tmp", what, path);
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail("open %s %s: %s", what, path, errtext(errno));
	b[*n].path = path;
	b[*n].what = what;
	b[*n].fd = fd;
	(*n)++;
	return 0;
}

/*
 * mount_all is setupMounts: private mounts, /proc of the new pid
 * namespace, read-only volumes outside /tmp, /tmp from the sandbox with
 * what lies below /tmp mounted back, /dev/shm. It first makes sure that
 * the namespace is the container's: mounting over the machine's /proc and
 * /tmp would break everything else on it.
 */
static int mount_all(const struct config *c, struct back *backs, size_t *nbacks)
{
	if (isolated(c->agent_mount_ns) != 0)
		return -1;
	if (do_mount("", "/", "", MS_REC | MS_PRIVATE, "", "make mounts private") != 0)
		return -1;
	if (do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "", "mount /proc") != 0)
		return -1;
	for (size_t i = 0; i < c->nro; i++) {
		const char *r = c->ro[i];
		if (contains(c->keep, c->nkeep, r))
			continue;
		if (in_tmp(r))
			return fail("read-only volume %s is below /tmp but not mounted back", r);
		if (bind_read_only(r) != 0) {
			char why[sizeof errbuf];
			snprintf(why, sizeof why, "%s", errbuf);
			return fail("read-only volume %s: %s", r, why);
		}
	}
	if (c->sandbox_in_tmp && keep_back(backs, nbacks, c->sandbox, "the sandbox") != 0)
		return -1;
	for (size_t i = 0; i < c->nkeep; i++)
		if (keep_back(backs, nbacks, c->keep[i], "the volume") != 0)
			return -1;
	if (*c->tmp) {
		char what[PATH_MAX + 32];
		snprintf(what, sizeof what, "mount %s on /tmp", c->tmp);
		if (do_mount(c->tmp, "/tmp", "", MS_BIND | MS_REC, "", what) != 0)
			return -1;
	} else if (do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", "mount a tmpfs on /tmp") != 0) {
		return -1;
	}
	for (size_t i = 0; i < *nbacks; i++) {
		if (mount_back(backs[i].fd, backs[i].path, contains(c->ro, c->nro, backs[i].path)) != 0) {
			char why[sizeof errbuf];
			snprintf(why, sizeof why, "%s", errbuf);
			return fail("%s below /tmp: %s", backs[i].what, why);
		}
	}
	/* POSIX shared memory lives in /dev/shm: the IPC namespace's own. */
	struct stat st;
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
	    do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k",
		     "mount /dev/shm") != 0)
		return -1;
	return 0;
}

static int setup_mounts(const struct config *c)
{
	size_t nbacks = 0;
	struct back *backs = calloc(c->nkeep + 1, sizeof *backs);
	if (!backs)
		return fail("container init: %s", errtext(ENOMEM));
	int rc = mount_all(c, backs, &nbacks);
	for (size_t i = 0; i < nbacks; i++)
		close(backs[i].fd);
	free(backs);
	return rc;
}

/* ---- starting the task ---- */

/* Set by a vfork child whose exec failed (the memory is shared). */
static volatile int child_errno;

/*
 * exec_child runs in a vfork child: the steps of Go's ForkExec in the
 * order it takes them (a session of its own if new_session; groups, gid, uid;
 * the directory; fds 0-2 inherited, without close-on-exec), then the exec.
 * Raw system calls: the credentials are this task's alone, not a whole
 * process's as glibc's wrappers would make them, and a failure leaves its
 * errno for the parent.
 */
__attribute__((noreturn)) static void exec_child(const struct config *c, const char *path, char **args, char **env,
						  const char *dir, int new_session)
{
	int ok = !new_session || syscall(SYS_setsid) >= 0;
	if (ok && c && c->has_uid)
		ok = syscall(SYS_setgroups, (long)c->ngroups, c->ngroups ? c->groups : NULL) >= 0 &&
		     syscall(SYS_setgid, (long)c->gid) >= 0 && syscall(SYS_setuid, (long)c->uid) >= 0;
	if (ok && dir)
		ok = syscall(SYS_chdir, dir) >= 0;
	for (int fd = 0; ok && fd < 3; fd++)
		ok = syscall(SYS_fcntl, fd, F_SETFD, 0) >= 0;
	if (ok)
		syscall(SYS_execve, path, args, env);
	child_errno = errno ? errno : EINVAL;
	for (;;)
		syscall(SYS_exit, 253);
}

/*
 * spawn starts path; returns its pid, or -1 with errno the reason it
 * could not start, the exec's included: vfork resumes this process only
 * once the child has exec'ed or exited.
 */
static pid_t spawn(const struct config *c, const char *path, char **args, char **env, const char *dir, int new_session)
{
	child_errno = 0;
	pid_t pid = vfork();
	if (pid == 0)
		exec_child(c, path, args, env, dir, new_session);
	if (pid < 0)
		return -1;
	if (child_errno != 0) {
		int e = child_errno, ws;
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
		errno = e;
		return -1;
	}
	return pid;
}

/* exit_code is what the init exits with when the task ended with ws. */
static int exit_code(int ws) { return WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws); }

/*
 * write_exit_file leaves wait status w in path durably (writeExitFile): a
 * temporary file fsynced and renamed over path, the directory fsynced.
 */
static int write_exit_file(const char *path, unsigned w)
{
	size_t n = strlen(path);
	char *tmp = malloc(n + 5), content[16];
	if (!tmp)
		return fail("open %s.tmp: %s", path, errtext(ENOMEM));
	snprintf(tmp, n + 5, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		int rc = fail("open %s: %s", tmp, errtext(errno));
		free(tmp);
		return rc;
	}
	int len = snprintf(content, sizeof content, "%u\n", w);
	const char *why = NULL;
	ssize_t wr = write(fd, content, (size_t)len);
	if (wr < 0)
		why = errtext(errno);
	else if (wr != len)
		why = "short write";
	if (!why && fsync(fd) != 0)
		why = errtext(errno);
	if (close(fd) != 0 && !why)
		why = errtext(errno);
	if (!why && rename(tmp, path) != 0)
		why = errtext(errno);
	if (why) {
		unlink(tmp);
		free(tmp);
		return fail("write %s: %s", path, why);
	}
	free(tmp);
	char *dir = strdup(path);
	if (!dir)
		return fail("open %s: %s", path, errtext(ENOMEM));
	size_t d = strlen(dir);
	while (d > 0 && dir[d - 1] != '/')
		d--;
	dir[d] = 0;
	const char *dp = d ? dir : ".";
	fd = open(dp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int rc = fail("open %s: %s", dp, errtext(errno));
		free(dir);
		return rc;
	}
	why = fsync(fd) != 0 ? errtext(errno) : NULL;
	if (close(fd) != 0 && !why)
		why = errtext(errno);
	int rc = why ? fail("sync %s: %s", dp, why) : 0;
	free(dir);
	return rc;
}

/*
 * join_cgroup moves this process into the container's cgroup v1
 * hierarchies: "0" written to a tasks file moves the writer's thread, which
 * the kernel does without the global lock that moving a whole process takes
 * (its write side waits for an RCU grace period: milliseconds for every
 * launch). This init runs a single thread, so its thread is the process, and
 * the task it starts next inherits the cgroup. A file it cannot write fails
 * the launch: the task must not start outside.
 */
static int join_cgroup(const struct config *c)
{
	for (size_t i = 0; i < c->ncgroup; i++) {
		int fd = open(c->cgroup[i], O_WRONLY | O_CLOEXEC);
		ssize_t w = -1;
		if (fd >= 0) {
			w = write(fd, "0", 1);
			if (w < 0) {
				int e = errno;
				close(fd);
				errno = e;
			} else
				close(fd);
		}
		if (w != 1)
			return fail("join the container's cgroup: %s: %s", c->cgroup[i], errtext(w < 0 ? errno : EIO));
	}
	return 0;
}

/* ---- agora __init ---- */

/* run_init is the container init once its pipes are known to be there. */
static int run_init(void)
{
	struct config c;
	size_t size;
	char line[64];
	/* Neither pipe may leak into the task. */
	fcntl(CONFIG_FD, F_SETFD, FD_CLOEXEC);
	fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
	char *raw = read_frame(&size);
	if (!raw)
		return 1; /* the agent gave up on the launch */
	if (decode_config(raw, size, &c) != 0 || setup_mounts(&c) != 0)
		return report_error();
	/* ps shows the init by its name rather than "exe". */
	prctl(PR_SET_NAME, "agora-init", 0, 0, 0);
	/* Its own start-up done, the init joins the container's cgroup (the
	 * agent moves an init that does not, once it says it is ready).
	 * Joined, it starts the task at once: the go-ahead only ever waited
	 * for the agent's move, and each round trip through a busy agent
	 * costs a launch milliseconds. */
	if (join_cgroup(&c) != 0)
		return report_error();
	if (!c.ncgroup) {
		report("ready\n");
		char go;
		ssize_t r;
		while ((r = read(CONFIG_FD, &go, 1)) < 0 && errno == EINTR)
			;
		if (r != 1 || go != GO_BYTE)
			return 1; /* the agent gave up on the launch */
	}
	close(CONFIG_FD);
	pid_t task = spawn(&c, c.path, c.args, c.env, NULL, 1);
	/* A joined init says so with the task's pid (or error), in one write
	 * that wakes the agent once. */
	const char *ready = c.ncgroup ? "ready joined\n" : "";
	if (task < 0) {
		fail("fork/exec %s: %s", c.path, errtext(errno));
		report(ready);
		return report_error();
	}
	snprintf(line, sizeof line, "%spid %d\n", ready, (int)task);
	report(line);
	for (;;) {
		int ws;
		pid_t pid = wait4(-1, &ws, 0, NULL);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0) {
			fail("wait for the task: %s", errtext(errno));
			return report_error();
		}
		if (pid != task)
			continue; /* an orphan re-parented to us */
		/* Written before reporting: if the agent is gone, its successor
		 * reads the status from here. */
		if (*c.exit_file && write_exit_file(c.exit_file, (unsigned)ws) != 0) {
			static char msg[sizeof errbuf + 64];
			snprintf(msg, sizeof msg, "agora-init: cannot record the task's exit status: %s\n", errbuf);
			(void)write_all(2, msg, strlen(msg));
		}
		snprintf(line, sizeof line, "status %u\n", (unsigned)ws);
		report(line);
		return exit_code(ws);
	}
}

/* ---- agora __enter ---- */

static int enter_fail(void)
{
	static char msg[sizeof errbuf + 32];
	snprintf(msg, sizeof msg, "agora __enter: %s\n", errbuf);
	(void)write_all(2, msg, strlen(msg));
	return 127;
}

/*
 * run_enter is "agora __enter PID DIR [CGROUP-PROCS]... -- PATH ARG...": a
 * command in the pid, IPC and UTS namespaces, cgroups and mounts (through
 * the init's root) of the container whose init is PID. The pid namespace
 * applies to children only, so the command is a child.
 */
static int run_enter(int argc, char **argv)
{
	if (argc < 4) {
		fail("usage: agora __enter PID DIR [CGROUP-PROCS]... -- PATH ARG...");
		return enter_fail();
	}
	long long pid;
	if (parse_int(argv[0], strlen(argv[0]), &pid) != 0 || pid <= 0) {
		fail("bad pid %s", quote(argv[0]));
		return enter_fail();
	}
	const char *dir = argv[1];
	int i = 2, procs = 2;
	while (i < argc && strcmp(argv[i], "--") != 0)
		i++;
	int nprocs = i - procs;
	if (argc - i < 2) {
		fail("no command after --");
		return enter_fail();
	}
	const char *path = argv[i + 1];
	char **args = argv + i + 2;
	char *only[2] = {(char *)path, NULL};
	if (argc - i - 2 == 0)
		args = only;
	char self[24];
	int selflen = snprintf(self, sizeof self, "%d", (int)getpid());
	for (int p = procs; p < procs + nprocs; p++) {
		/* As os.WriteFile(p, self, 0) does. */
		int fd = open(argv[p], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0);
		if (fd < 0) {
			fail("join the container's cgroup: open %s: %s", argv[p], errtext(errno));
			return enter_fail();
		}
		ssize_t w = write(fd, self, (size_t)selflen);
		int e = errno;
		int cerr = close(fd) != 0 ? errno : 0;
		if (w != selflen || cerr) {
			fail("join the container's cgroup: write %s: %s", argv[p],
			     w < 0 ? errtext(e) : w != selflen ? "short write" : errtext(cerr));
			return enter_fail();
		}
	}
	char proc[64], nspath[96];
	snprintf(proc, sizeof proc, "/proc/%lld", pid);
	static const struct {
		const char *name;
		int flag;
	} nss[] = {{"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"pid", CLONE_NEWPID}};
	for (size_t n = 0; n < sizeof nss / sizeof nss[0]; n++) {
		snprintf(nspath, sizeof nspath, "%s/ns/%s", proc, nss[n].name);
		int fd = open(nspath, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fail("open the container's %s namespace: %s", nss[n].name, errtext(errno));
			return enter_fail();
		}
		int rc = setns(fd, nss[n].flag), e = errno;
		close(fd);
		if (rc != 0) {
			fail("join the container's %s namespace: %s", nss[n].name, errtext(e));
			return enter_fail();
		}
	}
	snprintf(nspath, sizeof nspath, "%s/root", proc);
	if (chroot(nspath) != 0) {
		fail("enter the container's mounts: %s", errtext(errno));
		return enter_fail();
	}
	if (chdir(dir) != 0) {
		fail("change to %s in the container: %s", dir, errtext(errno));
		return enter_fail();
	}
	pid_t child = spawn(NULL, path, args, environ, dir, 0);
	if (child < 0) {
		fail("start %s in the container: %s", path, errtext(errno));
		return enter_fail();
	}
	for (;;) {
		int ws;
		if (wait4(child, &ws, 0, NULL) < 0) {
			if (errno == EINTR)
				continue;
			fail("wait for %s: %s", path, errtext(errno));
			return enter_fail();
		}
		return exit_code(ws);
	}
}

/*
 * As the Go agora-init: "__enter" enters a container; any other
 * invocation with the agent's pipes on fds 3 and 4 is the init; without
 * them the program says what it is.
 */
int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "__enter") == 0)
		return run_enter(argc - 2, argv + 2);
	if (!is_fifo(CONFIG_FD) || !is_fifo(STATUS_FD)) {
		static const char usage[] = "agora __init: this is the container init; the agent starts it\n";
		(void)write_all(2, usage, sizeof usage - 1);
		return 2;
	}
	return run_init();
}
