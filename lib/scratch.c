/*
 * scratch.c - per-thread scratch buffers (see scratch.h).
 */
#include "scratch.h"

#include <pthread.h>
#include <stdlib.h>

struct scratch {
	uint8_t *p[SCRATCH_N];
	size_t cap[SCRATCH_N];
};

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int key_err;

static void destroy(void *v)
{
	struct scratch *s = v;

	for (int i = 0; i < SCRATCH_N; i++)
		free(s->p[i]);
	free(s);
}

static void make_key(void)
{
	key_err = pthread_key_create(&key, destroy);
}

uint8_t *scratch_get(enum scratch_slot slot, size_t len)
{
	struct scratch *s;

	if (pthread_once(&once, make_key) || key_err || slot >= SCRATCH_N)
		return NULL;
	s = pthread_getspecific(key);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		if (pthread_setspecific(key, s)) {
			free(s);
			return NULL;
		}
	}
	if (s->cap[slot] < len || !s->p[slot]) {
		free(s->p[slot]);
		s->p[slot] = malloc(len ? len : 1);
		s->cap[slot] = s->p[slot] ? len : 0;
	}
	return s->p[slot];
}

void scratch_release(void)
{
	struct scratch *s;

	if (pthread_once(&once, make_key) || key_err)
		return;
	s = pthread_getspecific(key);
	if (s) {
		pthread_setspecific(key, NULL);
		destroy(s);
	}
}
