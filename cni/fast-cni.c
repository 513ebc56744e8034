/* fast-cni: the CNI plugin the container runtime executes for every pod.
 *
 * It only forwards the call to fast-agent over a unix socket and prints the agent's answer; all CNI
 * logic lives in the agent. It is small, static C on purpose: it runs once per pod operation, so it
 * must start instantly, need no JS runtime or shared libraries, and fail clearly when the agent is
 * down. Wire protocol and fallback rules: docs/architecture.md. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define STDIN_MAX ((size_t)16 << 20)
#define RESPONSE_MAX ((size_t)64 << 20)
#define TIMEOUT_S 120 /* generous: ADD may wait on IPAM, but a hung agent must not hang kubelet */
#define DEFAULT_SOCKET "/run/fast/agent.sock"
#define DEFAULT_PENDING_DIR "/var/lib/fast/pending-del"
#define VERSION_JSON \
	"{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}"

extern char **environ;

struct buf { char *p; size_t len, cap; };
struct reply { uint32_t exit_code; struct buf out, err; };

static const char *cni_version = "1.1.0"; /* echoed in our own errors; the config's if it has one */
static char why[1024];                    /* why the agent is unreachable, for error details */
static struct timespec deadline;          /* end of the whole agent exchange */

static void print_json_string(const char *s) {
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') printf("\\%c", c);
		else if (c < 0x20) printf("\\u%04x", c);
		else putchar(c);
	}
	putchar('"');
}

/* Prints a CNI error result and exits 1, which is how the spec says plugins report failure. */
static _Noreturn void fail(int code, const char *msg, const char *details) {
	printf("{\"cniVersion\":");
	print_json_string(cni_version);
	printf(",\"code\":%d,\"msg\":", code);
	print_json_string(msg);
	printf(",\"details\":");
	print_json_string(details);
	puts("}");
	exit(1); /* flushes stdout */
}

static void buf_reserve(struct buf *b, size_t extra) {
	if (b->cap - b->len >= extra) return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < extra) cap *= 2; /* no overflow: inputs are capped far below SIZE_MAX */
	char *p = realloc(b->p, cap);
	if (!p) fail(11, "fast-cni is out of memory", strerror(errno));
	b->p = p;
	b->cap = cap;
}

static void buf_add(struct buf *b, const void *data, size_t n) {
	buf_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void buf_add_u32(struct buf *b, uint32_t v) {
	v = htonl(v);
	buf_add(b, &v, 4);
}

static void read_stdin(struct buf *in) {
	for (;;) {
		buf_reserve(in, 65536);
		ssize_t n = read(0, in->p + in->len, in->cap - in->len);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) fail(5, "cannot read the network configuration from stdin", strerror(errno));
		if (n == 0) return;
		in->len += (size_t)n;
		if (in->len > STDIN_MAX) fail(7, "network configuration too large", "stdin exceeds 16 MiB");
	}
}

/* Decodes the JSON string whose opening quote is at s[*i] and leaves *i just past its closing
 * quote. Returns a malloc'd copy, or NULL if the string is unterminated. \u escapes become UTF-8
 * (surrogate pairs are not joined; good enough for paths and version strings). */
static char *json_string(const char *s, size_t n, size_t *i) {
	size_t start = ++*i, end = start;
	while (end < n && s[end] != '"') end += s[end] == '\\' ? 2 : 1;
	if (end >= n) return NULL;
	*i = end + 1;
	char *out = malloc(end - start + 1), *o = out; /* decoding never grows a string */
	if (!out) fail(11, "fast-cni is out of memory", strerror(errno));
	for (size_t k = start; k < end; k++) {
		if (s[k] != '\\') { *o++ = s[k]; continue; }
		char c = s[++k];
		unsigned cp = 0;
		switch (c) {
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			for (int d = 0; d < 4 && k + 1 < end && isxdigit((unsigned char)s[k + 1]); d++, k++)
				cp = cp * 16 + (unsigned)(isdigit((unsigned char)s[k + 1]) ? s[k + 1] - '0' : (s[k + 1] | 0x20) - 'a' + 10);
			if (cp < 0x80) { *o++ = (char)cp; break; }
			if (cp < 0x800) { *o++ = (char)(0xc0 | cp >> 6); }
			else { *o++ = (char)(0xe0 | cp >> 12); *o++ = (char)(0x80 | ((cp >> 6) & 0x3f)); }
			*o++ = (char)(0x80 | (cp & 0x3f));
			break;
		default: *o++ = c; /* \" \\ \/ */
		}
	}
	*o = '\0';
	return out;
}

static size_t skip_space(const char *s, size_t n, size_t i) {
	while (i < n && isspace((unsigned char)s[i])) i++;
	return i;
}

/* Returns the string value of top-level key `key` (malloc'd) or NULL. Only depth-1 keys count, so a
 * nested "agentSocket" is ignored. This is not a validator: malformed JSON just yields NULL here,
 * because the agent is the authority that rejects it (code 6) and must see it unchanged. */
static char *json_top_string(const char *s, size_t n, const char *key) {
	int depth = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] == '{' || s[i] == '[') depth++;
		else if (s[i] == '}' || s[i] == ']') depth--;
		if (s[i] != '"') { i++; continue; }
		char *str = json_string(s, n, &i); /* strings are skipped whole, so braces in them don't count */
		if (!str) return NULL;
		size_t j = skip_space(s, n, i);
		int is_our_key = depth == 1 && j < n && s[j] == ':' && strcmp(str, key) == 0;
		free(str);
		if (!is_our_key) continue;
		j = skip_space(s, n, j + 1);
		return j < n && s[j] == '"' ? json_string(s, n, &j) : NULL;
	}
	return NULL;
}

/* Frames the request: "FCNI" | version 1 | CNI_* env (NUL-separated) | stdin. Only CNI_* variables
 * go to the agent: the rest of the runtime's environment is none of its business. */
static void build_request(struct buf *req, const struct buf *in) {
	struct buf env = {0};
	for (char **e = environ; *e; e++) {
		if (strncmp(*e, "CNI_", 4) != 0) continue;
		if (env.len) buf_add(&env, "", 1);
		buf_add(&env, *e, strlen(*e));
	}
	buf_add(req, "FCNI", 4);
	buf_add_u32(req, 1);
	buf_add_u32(req, (uint32_t)env.len);
	buf_add(req, env.p, env.len);
	buf_add_u32(req, (uint32_t)in->len);
	buf_add(req, in->p, in->len);
	free(env.p);
}

/* Waits until the socket is ready, but never past the exchange deadline. */
static int wait_ready(int fd, short events) {
	for (;;) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ms = (deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1000000;
		struct pollfd p = { .fd = fd, .events = events };
		int r = ms > 0 ? poll(&p, 1, (int)ms) : 0;
		if (r > 0) return 0;
		if (r == 0) { errno = ETIMEDOUT; return -1; }
		if (errno != EINTR) return -1;
	}
}

/* Sends or receives exactly n bytes on the non-blocking socket, across partial transfers. */
static int sock_transfer(int fd, char *p, size_t n, int sending) {
	while (n > 0) {
		if (wait_ready(fd, sending ? POLLOUT : POLLIN) < 0) return -1;
		ssize_t r = sending ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
		if (r < 0) return -1;
		if (r == 0) { errno = ECONNRESET; return -1; } /* EOF before the full response */
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int recv_u32(int fd, uint32_t *v) {
	if (sock_transfer(fd, (char *)v, 4, 0) < 0) return -1;
	*v = ntohl(*v);
	return 0;
}

/* Reads one length-prefixed block; `budget` is what is left of the response size limit. */
static int recv_block(int fd, struct buf *b, size_t *budget) {
	uint32_t len;
	if (recv_u32(fd, &len) < 0) return -1;
	if (len > *budget) return -2;
	*budget -= len;
	buf_reserve(b, len ? len : 1);
	if (sock_transfer(fd, b->p, len, 0) < 0) return -1;
	b->len = len;
	return 0;
}

static int unreachable(const char *step, const char *path, const char *hint) {
	snprintf(why, sizeof why, "%s %s: %s (%s)", step, path, strerror(errno), hint);
	return -1;
}

/* Connects to the agent, or returns -1 with the reason in `why`. */
static int connect_agent(const char *path) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = TIMEOUT_S };
	int r, fd;

	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		return unreachable("connect", path, "unix socket paths are limited to 107 bytes");
	}
	strcpy(sa.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) return unreachable("socket for", path, "out of resources?");
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds connect when the backlog is full */
	while ((r = connect(fd, (struct sockaddr *)&sa, sizeof sa)) < 0 && errno == EINTR) {}
	if (r < 0) {
		unreachable("connect", path, "is fast-agent running on this node?");
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); /* so poll() can enforce the deadline */
	return fd;
}

/* One request/response with the agent, all within TIMEOUT_S. Returns 0, -1 if the agent is
 * unreachable (reason in `why`), or -2 if the response is over the size limit. */
static int exchange(const char *path, const struct buf *req, struct reply *rep) {
	size_t budget = RESPONSE_MAX;
	int r = 0, fd;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += TIMEOUT_S;
	if ((fd = connect_agent(path)) < 0) return -1;
	if (sock_transfer(fd, req->p, req->len, 1) < 0 || recv_u32(fd, &rep->exit_code) < 0) r = -1;
	if (r == 0) r = recv_block(fd, &rep->out, &budget);
	if (r == 0) r = recv_block(fd, &rep->err, &budget);
	if (r == -1)
		unreachable("exchange with", path, errno == ETIMEDOUT ? "no complete answer within 120 s"
			    : "fast-agent closed the connection before a complete response");
	close(fd);
	return r;
}

/* write(2) until done; for stdout, stderr and the pending-delete file. */
static int write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t r = write(fd, p, n);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* mkdir -p: missing directories are created 0700 since pending deletes are the agent's business. */
static int mkdir_p(char *path) {
	if (!*path) { errno = ENOENT; return -1; }
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p) continue;
		char c = *p;
		*p = '\0';
		int r = mkdir(path, 0700);
		*p = c;
		if (r < 0 && errno != EEXIST) return -1;
		if (!c) return 0;
	}
}

/* Returns a copy of env var `name` that is safe as part of a file name: only [A-Za-z0-9_.-] and
 * no leading dot and never "..", so a hostile CNI_CONTAINERID cannot escape the pending-delete
 * directory or hide its file. */
static char *file_name_part(const char *name) {
	const char *v = getenv(name);
	char *s = strdup(v && *v ? v : "unknown");
	if (!s) fail(11, "fast-cni is out of memory", strerror(errno));
	for (char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || (*p == '.' && p > s && p[-1] != '.')))
			*p = '_';
	return s;
}

/* Saves the DEL request for the agent to replay when it starts: a runtime must be able to delete
 * pods while the agent is down. Written to a temp file and renamed, so the agent never replays a
 * half-written request. On failure returns -1 and describes the error in `err`. */
static int save_pending_delete(const char *dir, const struct buf *req, char *err, size_t errlen) {
	char d[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX];
	char *id = file_name_part("CNI_CONTAINERID"), *ifname = file_name_part("CNI_IFNAME");
	int fits = snprintf(d, sizeof d, "%s", dir) < (int)sizeof d &&
		   snprintf(path, sizeof path, "%s/%s-%s.del", dir, id, ifname) < (int)sizeof path &&
		   snprintf(tmp, sizeof tmp, "%s/.%s-%s.del.tmp%d", dir, id, ifname, (int)getpid()) < (int)sizeof tmp;
	const char *step = "mkdir", *where = dir;
	int fd = -1, saved;
	free(id);
	free(ifname);
	if (!fits) { errno = ENAMETOOLONG; goto failed; }
	if (mkdir_p(d) < 0) goto failed;
	step = "write";
	where = tmp;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) goto failed;
	if (write_all(fd, req->p, req->len) < 0 || fsync(fd) < 0) goto failed;
	close(fd);
	fd = -1;
	step = "rename to";
	where = path;
	if (rename(tmp, path) < 0) goto failed;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) { fsync(fd); close(fd); } /* persist the rename */
	return 0;
failed:
	saved = errno;
	if (fd >= 0) close(fd);
	if (where != dir) unlink(tmp); /* never leave a half-written temp file behind */
	snprintf(err, errlen, "%s %s: %s", step, where, strerror(saved));
	return -1;
}

static _Noreturn void agent_unreachable(const char *cmd, const struct buf *in, const struct buf *req) {
	if (strcmp(cmd, "DEL") == 0) {
		char *dir = json_top_string(in->p, in->len, "pendingDeleteDir");
		char err[PATH_MAX + 256], details[sizeof err + sizeof why + 4];
		if (save_pending_delete(dir && *dir ? dir : DEFAULT_PENDING_DIR, req, err, sizeof err) == 0) exit(0);
		snprintf(details, sizeof details, "%s; %s", err, why);
		fail(11, "fast-agent is not reachable and the delete could not be queued", details);
	}
	fail(strcmp(cmd, "STATUS") == 0 ? 50 : 11, "fast-agent is not reachable", why);
}

int main(void) {
	struct buf in = {0}, req = {0};
	struct reply rep = {0};
	const char *cmd = getenv("CNI_COMMAND");

	signal(SIGPIPE, SIG_IGN); /* a vanished agent or reader must give an error, not kill us silently */
	if (cmd && strcmp(cmd, "VERSION") == 0) { /* answered before reading stdin, so it never blocks */
		puts(VERSION_JSON);
		return 0;
	}
	read_stdin(&in);
	char *version = json_top_string(in.p, in.len, "cniVersion");
	if (version) cni_version = version;
	if (!cmd || !*cmd) fail(4, "CNI_COMMAND is not set", "fast-cni is a CNI plugin: it must be run by a container runtime");

	char *sock = json_top_string(in.p, in.len, "agentSocket");
	const char *env_sock = getenv("FAST_AGENT_SOCKET");
	const char *path = sock && *sock ? sock : env_sock && *env_sock ? env_sock : DEFAULT_SOCKET;
	build_request(&req, &in);

	int r = exchange(path, &req, &rep);
	if (r == -2) fail(11, "fast-agent response too large", "the response exceeds the 64 MiB limit");
	if (r < 0) agent_unreachable(cmd, &in, &req);
	write_all(1, rep.out.p, rep.out.len);
	write_all(2, rep.err.p, rep.err.len);
	return rep.exit_code > 255 ? 1 : (int)rep.exit_code; /* exit statuses are 8 bits; never let 256 read as 0 */
}
