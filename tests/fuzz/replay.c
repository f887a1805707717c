/*
 * replay.c - run the fuzz entry point over every file of a saved corpus,
 * without libFuzzer, so every normal (and sanitizer) test run re-checks
 * what the fuzzers once found interesting, crash reproducers included.
 *
 *   fuzz_replay DIR|FILE...
 *
 * Each input is read into a buffer of exactly its size (so a sanitizer
 * build sees any read past it).  A property violation aborts inside the
 * entry point; the file being run is printed first so the failure names
 * it.  Exit status: 0 when every input ran, 1 on an unreadable input or
 * when no input was found at all (a missing corpus must not pass).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path, size_t *count)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	struct stat st;
	size_t got;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || st.st_size > (64 << 20)) {
		fprintf(stderr, "fuzz_replay: %s: cannot size (or over 64 MiB)\n", path);
		goto out;
	}
	/* malloc(0) may return NULL; keep one byte but pass size 0. */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf)
		goto out;
	got = fread(buf, 1, (size_t)st.st_size, f);
	if (got != (size_t)st.st_size) {
		fprintf(stderr, "fuzz_replay: %s: short read\n", path);
		goto out;
	}
	fprintf(stderr, "fuzz_replay: %s (%zu bytes)\n", path, got);
	LLVMFuzzerTestOneInput(buf, got);
	(*count)++;
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file directly in @dir, in name order (reproducible runs). */
static int replay_dir(const char *dir, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (!d) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*names));
			if (!nn) {
				rc = -1;
				break;
			}
			names = nn;
		}
		size_t len = strlen(dir) + strlen(de->d_name) + 2;
		names[n] = malloc(len);
		if (!names[n]) {
			rc = -1;
			break;
		}
		snprintf(names[n], len, "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode) &&
		    replay_file(names[i], count) < 0)
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: fuzz_replay DIR|FILE...\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "fuzz_replay: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
			continue;
		}
		if ((S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count)
					 : replay_file(argv[i], &count)) < 0)
			rc = 1;
	}
	printf("fuzz_replay: %zu inputs replayed\n", count);
	if (count == 0)
		rc = 1;
	return rc;
}
