/*
 * stats.c: latency samples and the result lines (see bench.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

/* samples_init: an empty series with room for cap samples. */
void
samples_init(struct samples *s, size_t cap)
{
	s->n = 0;
	s->cap = cap > 0 ? cap : 16;
	if ((s->ns = malloc(s->cap * sizeof(*s->ns))) == NULL)
		die("out of memory for %zu samples", s->cap);
}

/* samples_add: appends one sample, growing the series as needed. */
void
samples_add(struct samples *s, uint64_t ns)
{
	uint64_t *p;

	if (s->n == s->cap) {
		if ((p = realloc(s->ns, 2 * s->cap * sizeof(*p))) == NULL)
			die("out of memory for %zu samples", 2 * s->cap);
		s->ns = p;
		s->cap *= 2;
	}
	s->ns[s->n++] = ns;
}

/* samples_free: frees the series' storage. */
void
samples_free(struct samples *s)
{
	free(s->ns);
	s->ns = NULL;
	s->n = s->cap = 0;
}

/* For qsort: ascending. */
static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of sorted samples, nearest rank. */
static uint64_t
quantile(const struct samples *s, double q)
{
	size_t i = (size_t)(q * (double)s->n);

	if (i >= s->n)
		i = s->n - 1;
	return s->ns[i];
}

/* report_latency: sorts s and prints its median and 99th percentile in
 * microseconds: "R METRIC REP P50 P99 N".  Dies on an empty series. */
void
report_latency(const char *metric, int rep, struct samples *s)
{
	if (s->n == 0)
		die("%s: no samples", metric);
	qsort(s->ns, s->n, sizeof(*s->ns), cmp_u64);
	printf("R %s %d %.3f %.3f %zu\n", metric, rep,
	    (double)quantile(s, 0.5) / 1e3, (double)quantile(s, 0.99) / 1e3,
	    s->n);
}

/* report_value: prints one figure: "V METRIC REP VALUE UNIT". */
void
report_value(const char *metric, int rep, double value, const char *unit)
{
	printf("V %s %d %.6g %s\n", metric, rep, value, unit);
}
