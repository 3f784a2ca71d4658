/* fuzz_config: the config file reader (shared/config.c), fed the input as
 * the --config file of tlsfwd-client and of tlsfwd-server.
 *
 * Invariants: an error is one NUL-terminated line in its buffer; a config
 * that loads prints (config_print, what --check shows) as a file that loads
 * again and prints the same; everything is freed (LeakSanitizer). */
#include "client.h"
#include "config.h"
#include "server.h"
#include "fuzz.h"

#define ERRSZ 512

/* load(role, path, cfg, err): config_load with only --config path. */
static int load(enum role_id role, const char *path, struct config *cfg, char *err)
{
	static char prog[] = "tlsfwd-fuzz";	/* cfg->prog points to it */
	char flag[] = "--config", p[64];
	char *argv[] = { prog, flag, p, NULL };

	snprintf(p, sizeof(p), "%s", path);
	return config_load(cfg, role == ROLE_CLIENT ? &client_role : &server_role, prog, 3, argv, err, ERRSZ);
}

/* printed(cfg, len): config_print's output in a malloc'd buffer. */
static char *printed(const struct config *cfg, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	CHECK(f != NULL, "open_memstream");
	config_print(cfg, f);
	CHECK(fclose(f) == 0, "fclose");
	return buf;
}

static void one_role(enum role_id role, const char *path)
{
	struct config cfg, again;
	char *err = malloc(ERRSZ), *out, *out2, path2[64];
	size_t len, len2;
	int fd;

	CHECK(err != NULL, "out of memory");
	err[0] = '\0';
	if (load(role, path, &cfg, err) != 0) {
		CHECK(fuzz_cstr_in(err, ERRSZ) && err[0] != '\0', "an error without a message");
		CHECK(strchr(err, '\n') == NULL, "an error of several lines: %s", err);
		config_free(&cfg);
		free(err);
		return;
	}
	out = printed(&cfg, &len);
	fd = fuzz_file((const uint8_t *)out, len, path2, sizeof(path2));
	CHECK(load(role, path2, &again, err) == 0, "config_print output does not load: %s\n%s",
	    err, out);
	close(fd);
	out2 = printed(&again, &len2);
	CHECK(len == len2 && memcmp(out, out2, len) == 0,
	    "config_print does not round-trip:\n%s\n-- read back as --\n%s", out, out2);
	free(out);
	free(out2);
	config_free(&cfg);
	config_free(&again);
	free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_file(data, size, path, sizeof(path));

	one_role(ROLE_CLIENT, path);
	one_role(ROLE_SERVER, path);
	close(fd);
	return 0;
}
