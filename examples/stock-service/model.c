#include "examples/stock-service/model.h"

#include "common/jsonw.h"
#include "common/log.h"
#include "common/mem.h"
#include "examples/stock-service/dedup.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Enough for the republish window of a proxy plus a queue's worth of
 * redeliveries; see dedup.h. */
#define MODEL_DEDUP_CAPACITY 8192

struct record {
    char *sku;
    char *name;
    int64_t qty;
    double price;
};

/*
 * Records are kept in an array sorted by sku: lookups are a binary search,
 * GET /model prints them in order without sorting, and a shop has few
 * enough skus that an insertion's memmove costs nothing.
 *
 * Every field is guarded by lock.
 */
struct model {
    pthread_mutex_t lock;
    struct record **records;
    size_t n_records;
    size_t cap_records;
    struct dedup *seen;
    uint64_t applied;
    uint64_t ignored;
    uint64_t duplicates;
    int feed_connected;
};

struct model *model_new(void)
{
    struct model *m = mem_calloc(1, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    m->seen = dedup_new(MODEL_DEDUP_CAPACITY);
    return m;
}

static void record_free(struct record *r)
{
    if (r == NULL)
        return;
    free(r->sku);
    free(r->name);
    free(r);
}

void model_free(struct model *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_records; i++)
        record_free(m->records[i]);
    free(m->records);
    dedup_free(m->seen);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Compares a (key, len) against a NUL-terminated sku the way strcmp would. */
static int compare_sku(const char *key, size_t len, const char *sku)
{
    size_t sku_len = strlen(sku);
    int c = memcmp(key, sku, len < sku_len ? len : sku_len);
    if (c != 0)
        return c;
    return (len > sku_len) - (len < sku_len);
}

/*
 * Binary search. Returns 1 and sets *pos to the record's index when found;
 * otherwise 0 with *pos where it would be inserted. Caller holds the lock.
 */
static int find(const struct model *m, const char *key, size_t len, size_t *pos)
{
    size_t lo = 0;
    size_t hi = m->n_records;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare_sku(key, len, m->records[mid]->sku);
        if (c == 0) {
            *pos = mid;
            return 1;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *pos = lo;
    return 0;
}

static void upsert(struct model *m, const struct model_op *op)
{
    size_t pos;
    struct record *r;
    if (find(m, op->sku, strlen(op->sku), &pos)) {
        r = m->records[pos];
    } else {
        if (m->n_records >= MODEL_MAX_SKUS) {
            log_warn("model full (%d skus): not adding %s", MODEL_MAX_SKUS, op->sku);
            return;
        }
        if (m->n_records == m->cap_records) {
            m->cap_records = m->cap_records ? m->cap_records * 2 : 16;
            m->records = mem_realloc(m->records, m->cap_records * sizeof(*m->records));
        }
        r = mem_calloc(1, sizeof(*r));
        r->sku = mem_strdup(op->sku);
        r->name = mem_strdup("");
        memmove(&m->records[pos + 1], &m->records[pos], (m->n_records - pos) * sizeof(*m->records));
        m->records[pos] = r;
        m->n_records++;
    }
    if (op->name != NULL) {
        free(r->name);
        r->name = mem_strdup(op->name);
    }
    r->qty = op->qty;
    if (op->has_price)
        r->price = op->price;
}

static void set_qty(struct model *m, const struct model_op *op)
{
    size_t pos;
    /* An order only tells us what is left of a sku, not its name or price:
     * a record made from that alone would be half empty, so unknown skus
     * wait until a stock.get or stock.adjust introduces them. */
    if (find(m, op->sku, strlen(op->sku), &pos))
        m->records[pos]->qty = op->qty;
}

enum model_apply_result model_apply(struct model *m, const char *event_id,
                                    const struct model_op *ops, size_t n_ops)
{
    enum model_apply_result res = MODEL_APPLY_IGNORED;
    pthread_mutex_lock(&m->lock);
    if (dedup_check_and_add(m->seen, event_id)) {
        m->duplicates++;
        res = MODEL_APPLY_DUPLICATE;
        goto out;
    }
    for (size_t i = 0; i < n_ops; i++) {
        switch (ops[i].kind) {
        case MODEL_OP_UPSERT:
            upsert(m, &ops[i]);
            res = MODEL_APPLY_APPLIED;
            break;
        case MODEL_OP_SET_QTY:
            set_qty(m, &ops[i]);
            res = MODEL_APPLY_APPLIED;
            break;
        case MODEL_OP_NONE:
            break;
        }
    }
    if (res == MODEL_APPLY_APPLIED)
        m->applied++;
    else
        m->ignored++;
out:
    pthread_mutex_unlock(&m->lock);
    return res;
}

void model_note_invalid(struct model *m)
{
    pthread_mutex_lock(&m->lock);
    m->ignored++;
    pthread_mutex_unlock(&m->lock);
}

void model_set_feed_connected(struct model *m, int connected)
{
    pthread_mutex_lock(&m->lock);
    m->feed_connected = connected != 0;
    pthread_mutex_unlock(&m->lock);
}

/* Caller holds the lock. */
static void write_record(const struct record *r, struct buf *out)
{
    buf_append_str(out, "{\"sku\": ");
    jsonw_cstring(out, r->sku);
    buf_append_str(out, ", \"name\": ");
    jsonw_cstring(out, r->name);
    buf_append_str(out, ", \"qty\": ");
    jsonw_i64(out, r->qty);
    buf_append_str(out, ", \"price\": ");
    /* Prices only enter the model after an isfinite() check (event.c). */
    if (jsonw_double(out, r->price) != 0)
        buf_append_str(out, "null");
    buf_append_char(out, '}');
}

int model_write_record(struct model *m, const char *sku, size_t len, struct buf *out)
{
    int rc = -1;
    size_t pos;
    pthread_mutex_lock(&m->lock);
    if (find(m, sku, len, &pos)) {
        write_record(m->records[pos], out);
        rc = 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void model_write_json(struct model *m, struct buf *out)
{
    pthread_mutex_lock(&m->lock);
    buf_append_str(out, "{\"skus\": {");
    for (size_t i = 0; i < m->n_records; i++) {
        if (i > 0)
            buf_append_str(out, ", ");
        jsonw_cstring(out, m->records[i]->sku);
        buf_append_str(out, ": ");
        write_record(m->records[i], out);
    }
    buf_appendf(out,
                "}, \"events_applied\": %llu, \"duplicates_ignored\": %llu, "
                "\"events_ignored\": %llu, \"feed_connected\": %s}",
                (unsigned long long)m->applied, (unsigned long long)m->duplicates,
                (unsigned long long)m->ignored, m->feed_connected ? "true" : "false");
    pthread_mutex_unlock(&m->lock);
}
