/*
 * afl_mutator.c - the structure-aware log mutator as an AFL++ custom
 * mutator library (AFL_CUSTOM_MUTATOR_LIBRARY=.../libpcmutator.so), for the
 * log targets fuzz_log_replay and fuzz_log_parse.
 *
 *   afl_custom_init          seeds the mutator from AFL++'s seed
 *   afl_custom_fuzz          one mutation of buf (or a crossover with
 *                            add_buf, one time in eight), into our buffer
 *   afl_custom_post_process  cuts to the bounded input size and repairs
 *                            entry checksums in 15 inputs of 16 (a pure
 *                            function of the bytes; the standalone main's
 *                            --post-process repeats it for reproduction)
 *   afl_custom_describe      names the last mutation (queue file names)
 *   afl_custom_deinit        frees the state
 *
 * Guarantees: never returns more than max_size bytes; no I/O; all state is
 * in the handle returned by init.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "mutator.h"

struct pcmut {
    uint8_t *buf;      /* output of fuzz */
    uint8_t *post;     /* output of post_process */
    unsigned int seed; /* advanced per call */
};

void *afl_custom_init(void *afl, unsigned int seed);
size_t afl_custom_fuzz(void *data, uint8_t *buf, size_t buf_size, uint8_t **out_buf, uint8_t *add_buf,
                       size_t add_buf_size, size_t max_size);
size_t afl_custom_post_process(void *data, uint8_t *buf, size_t buf_size, uint8_t **out_buf);
const char *afl_custom_describe(void *data, size_t max_description_len);
void afl_custom_deinit(void *data);

void *afl_custom_init(void *afl, unsigned int seed)
{
    (void)afl;
    struct pcmut *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->buf = malloc(LR_MAX_INPUT);
    m->post = malloc(LR_MAX_INPUT);
    if (!m->buf || !m->post) {
        free(m->buf);
        free(m->post);
        free(m);
        return NULL;
    }
    m->seed = seed;
    return m;
}

size_t afl_custom_fuzz(void *data, uint8_t *buf, size_t buf_size, uint8_t **out_buf, uint8_t *add_buf,
                       size_t add_buf_size, size_t max_size)
{
    struct pcmut *m = data;
    if (max_size > LR_MAX_INPUT)
        max_size = LR_MAX_INPUT;
    m->seed = m->seed * 1103515245u + 12345u;
    size_t n;
    if (add_buf && add_buf_size && (m->seed >> 8) % 8 == 0) {
        n = fuzz_log_crossover(buf, buf_size, add_buf, add_buf_size, m->buf, max_size, m->seed);
    } else {
        n = buf_size < max_size ? buf_size : max_size;
        memcpy(m->buf, buf, n);
        n = fuzz_log_mutate(m->buf, n, max_size, m->seed, NULL);
    }
    if (n == 0) { /* AFL++ needs a length > 0 */
        m->buf[0] = 0;
        n = 1;
    }
    *out_buf = m->buf;
    return n;
}

size_t afl_custom_post_process(void *data, uint8_t *buf, size_t buf_size, uint8_t **out_buf)
{
    struct pcmut *m = data;
    size_t n = buf_size < LR_MAX_INPUT ? buf_size : LR_MAX_INPUT;
    memcpy(m->post, buf, n);
    n = fuzz_log_post_process(m->post, n);
    *out_buf = m->post;
    return n;
}

const char *afl_custom_describe(void *data, size_t max_description_len)
{
    (void)data, (void)max_description_len;
    return fuzz_log_last_mutation();
}

void afl_custom_deinit(void *data)
{
    struct pcmut *m = data;
    if (!m)
        return;
    free(m->buf);
    free(m->post);
    free(m);
}
