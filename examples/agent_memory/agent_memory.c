/* examples/agent_memory/agent_memory.c - an agent's long-term memory in
 * Strata: notes are blobs (text content) with an embedding, tags, a namespace
 * per user and lineage edges (a revision supersedes the note it replaces, a
 * summary is derived from its sources). Composite queries then answer the
 * questions an agent asks before it replies, and print why each note ranks
 * where it does (strata_query_explain_format).
 *
 * The embedding is a toy: a bag of words (64 dimensions, normalised), so
 * notes that share words are near under the cosine metric. A real agent
 * would store a model's embedding instead; nothing else changes.
 * The clock is simulated (days apart), so recency is deterministic.
 * Self-checking: exits 1 if a ranking is not the one this file expects.
 *
 *   agent_memory            (database in memory; public API only)
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"

#define DIM 64
#define DAY_MS (24ull * 3600 * 1000)
#define EPOCH_MS 1700000000000ull                       /* day 0 of the simulation */
#define TODAY_HLC ((EPOCH_MS + 24 * DAY_MS) << 16)      /* ages are measured from day 24 */

static uint64_t g_now = EPOCH_MS;   /* simulated wall clock, ms */
static uint64_t clock_fn(void *ctx) { (void)ctx; return g_now; }

static int g_failures;
#define EXPECT(cond, ...) do { if (!(cond)) { printf("UNEXPECTED: " __VA_ARGS__); printf("\n"); g_failures++; } } while (0)

static void die(const char *what, int rc) {
    fprintf(stderr, "agent_memory: %s: %s\n", what, strata_strerror(rc));
    exit(2);
}
#define CHECK(call) do { int rc_ = (call); if (rc_) die(#call, rc_); } while (0)

/* Toy embedding: a bag of words. Words of a small vocabulary get their own
 * dimension; other words (minus stop words) are hashed into the upper half
 * with a lower weight; plural "s" is stripped. Normalised to length 1. */
static const char *const vocab[] = {
    "coffee", "tea", "drink", "morning", "sugar", "green", "black", "lyon", "trip", "travel",
    "train", "hotel", "conference", "budget", "euro", "birthday", "allergic", "peanut", "quiet",
    "venue", "book", "plan", "switched",
};
static const char *const stop[] = {
    "alice", "bob", "the", "and", "what", "does", "like", "with", "for", "her", "every", "from",
    "help", "never", "into", "this", "that", "now",
};

static int in_list(const char *w, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(w, list[i]) == 0) return (int)i;
    return -1;
}

static void embed(const char *text, float v[DIM]) {
    memset(v, 0, DIM * sizeof *v);
    for (const char *p = text; *p;) {
        char w[32];
        size_t len = 0;
        while (*p && !isalnum((unsigned char)*p)) p++;
        for (; isalnum((unsigned char)*p); p++)
            if (len < sizeof w - 1) w[len++] = (char)tolower((unsigned char)*p);
        w[len] = 0;
        if (len > 3 && w[len - 1] == 's') w[--len] = 0;
        if (len < 3 || in_list(w, stop, sizeof stop / sizeof *stop) >= 0) continue;
        int d = in_list(w, vocab, sizeof vocab / sizeof *vocab);
        if (d >= 0) { v[d] += 1.0f; continue; }
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)w[i]) * 16777619u;
        v[DIM / 2 + h % (DIM / 2)] += 0.5f;
    }
    float n = 0;
    for (int i = 0; i < DIM; i++) n += v[i] * v[i];
    for (int i = 0; n > 0 && i < DIM; i++) v[i] /= sqrtf(n);
}

typedef struct note {
    const char *key;       /* name used by this program only      */
    int         day;       /* day it was written                  */
    const char *user;      /* namespace                           */
    const char *tags;      /* comma-separated                     */
    const char *text;
    uint64_t    id;
} note;

static note notes[] = {
    { "coffee",    0,  "alice", "preference",          "Alice drinks her coffee black, no sugar, every morning" },
    { "allergy",   1,  "alice", "fact,health",         "Alice is allergic to peanuts" },
    { "trip",      3,  "alice", "task",                "Book a train to Lyon for Alice's conference in March" },
    { "hotel",     4,  "alice", "task",                "Alice wants a quiet hotel near the Lyon conference venue" },
    { "bob-drink", 5,  "bob",   "preference",          "Bob drinks green tea in the morning, never coffee" },
    { "tea",       20, "alice", "preference",          "Alice switched from coffee to green tea in the morning" },
    { "budget",    21, "alice", "fact",                "Alice's travel budget for the Lyon trip is 600 euros" },
    { "summary",   22, "alice", "summary",             "Lyon trip plan: train booked, quiet hotel shortlisted, budget 600" },
    { "birthday",  23, "alice", "fact",                "Alice's birthday is on the 12th of May" },
};
enum { NNOTES = sizeof notes / sizeof notes[0] };

static note *find(const char *key) {
    for (size_t i = 0; i < NNOTES; i++)
        if (strcmp(notes[i].key, key) == 0) return &notes[i];
    return NULL;
}

static const char *key_of(uint64_t id) {
    for (size_t i = 0; i < NNOTES; i++)
        if (notes[i].id == id) return notes[i].key;
    return "?";
}

static void remember(strata_db *db, note *n) {
    strata_txn *w;
    strata_blob_opts o;
    float v[DIM];
    char tags[128];
    memset(&o, 0, sizeof o);
    o.ns = n->user;
    o.content_type = "text/plain";
    o.label = n->key;
    g_now = EPOCH_MS + (uint64_t)n->day * DAY_MS;
    CHECK(strata_begin_write(db, &w));
    CHECK(strata_blob_put(w, &o, n->text, strlen(n->text), &n->id));
    embed(n->text, v);
    CHECK(strata_blob_embed_set(w, n->id, v, DIM));
    snprintf(tags, sizeof tags, "%s", n->tags);
    for (char *t = strtok(tags, ","); t; t = strtok(NULL, ",")) CHECK(strata_blob_tag_add(w, n->id, t));
    CHECK(strata_commit(w));
}

static void link_notes(strata_db *db, const char *from, const char *to, strata_blob_rel rel, const char *why) {
    strata_txn *w;
    CHECK(strata_begin_write(db, &w));
    CHECK(strata_blob_link(w, find(from)->id, find(to)->id, rel, why));
    CHECK(strata_commit(w));
}

/* Run q, print the plan and the ranking, return the ranked keys. */
static size_t ask(strata_db *db, const char *question, strata_query *q, const char **keys, size_t cap) {
    strata_txn *r;
    strata_query_result res[8];
    strata_query_explain ex;
    size_t n = 0;
    char text[4096];
    if (cap > 8) cap = 8;
    CHECK(strata_begin_read(db, &r));
    CHECK(strata_query_run(r, q, res, cap, &n, &ex));
    strata_abort(r);
    strata_query_explain_format(&ex, res, n, text, sizeof text);
    printf("\nQ: %s\n%s", question, text);
    for (size_t i = 0; i < n; i++) {
        keys[i] = key_of(res[i].id);
        printf("  -> %zu. %-9s %s\n", i + 1, keys[i], find(keys[i])->text);
    }
    return n;
}

static int ranked(const char **got, size_t n, const char *const *want, size_t nw) {
    if (n != nw) return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(got[i], want[i])) return 0;
    return 1;
}

static void q_drink(strata_db *db, int rrf) {
    strata_query *q;
    float v[DIM];
    const char *got[8];
    embed("what does Alice like to drink in the morning, coffee or tea", v);
    CHECK(strata_query_create(&q));
    CHECK(strata_query_set_vector(q, STRATA_METRIC_COSINE, v, DIM, 5, 1.0, 0));
    CHECK(strata_query_set_namespace(q, "alice"));
    CHECK(strata_query_set_recency(q, TODAY_HLC, 7 * DAY_MS));       /* a week's half-life */
    CHECK(strata_query_prefer_tag(q, "preference"));
    CHECK(strata_query_set_weight(q, STRATA_QUERY_SIMILARITY, 2.0));
    if (rrf) CHECK(strata_query_set_fusion(q, STRATA_QUERY_FUSE_RRF, 0));
    size_t n = ask(db, rrf ? "What does Alice drink in the morning? (reciprocal rank fusion)"
                           : "What does Alice drink in the morning?", q, got, 3);
    /* The recent revision wins over the old preference; Bob's note (another
     * namespace) never appears, however similar. */
    EXPECT(n == 3 && strcmp(got[0], "tea") == 0 && strcmp(got[1], "coffee") == 0,
           "drink%s: expected tea, coffee first", rrf ? " (rrf)" : "");
    for (size_t i = 0; i < n; i++) EXPECT(strcmp(got[i], "bob-drink") != 0, "Bob's note in Alice's answer");
    strata_query_free(q);
}

static void q_drink_current(strata_db *db) {
    strata_query *q;
    float v[DIM];
    const char *got[8];
    static const char *const want[] = { "tea" };
    embed("what does Alice like to drink in the morning, coffee or tea", v);
    CHECK(strata_query_create(&q));
    CHECK(strata_query_set_vector(q, STRATA_METRIC_COSINE, v, DIM, 5, 1.0, 0));
    CHECK(strata_query_set_namespace(q, "alice"));
    CHECK(strata_query_require_tag(q, "preference"));
    CHECK(strata_query_exclude_tag(q, "superseded"));
    size_t n = ask(db, "What does Alice drink now? (superseded notes excluded)", q, got, 3);
    EXPECT(ranked(got, n, want, 1), "current drink: expected only tea");
    strata_query_free(q);
}

static void q_trip(strata_db *db) {
    strata_query *q;
    float v[DIM];
    const char *got[8];
    static const char *const want[] = { "summary", "budget", "trip", "hotel" };
    embed("help Alice with the Lyon trip", v);
    CHECK(strata_query_create(&q));
    CHECK(strata_query_set_anchor(q, find("summary")->id, STRATA_BLOB_BOTH, 0, 2, STRATA_QUERY_LINEAGE_FILTER));
    CHECK(strata_query_set_vector(q, STRATA_METRIC_COSINE, v, DIM, 4, 1.0, 0));
    CHECK(strata_query_set_weight(q, STRATA_QUERY_LINEAGE, 2.0));
    size_t n = ask(db, "Everything behind the Lyon trip summary (lineage within 2 hops)", q, got, 6);
    /* The anchor (hop 0) first, then its sources by similarity to the task:
     * the budget note mentions both "Lyon" and "trip". */
    EXPECT(ranked(got, n, want, 4), "trip context: expected summary, budget, trip, hotel");
    strata_query_free(q);
}

static int recent_fact(void *ctx, strata_txn *txn, const strata_blob_info *info) {
    (void)txn;
    uint64_t since = *(const uint64_t *)ctx;
    return STRATA_HLC_PHYS_MS(info->created_hlc) >= since && info->size < 200;
}

static void q_facts(strata_db *db) {
    strata_query *q;
    const char *got[8];
    static const char *const want[] = { "birthday", "budget", "allergy" };
    uint64_t since = EPOCH_MS;
    CHECK(strata_query_create(&q));
    CHECK(strata_query_require_tag(q, "fact"));
    CHECK(strata_query_set_recency(q, TODAY_HLC, 30 * DAY_MS));
    CHECK(strata_query_set_predicate(q, recent_fact, &since));
    size_t n = ask(db, "Alice's facts, newest first (predicate on metadata)", q, got, 5);
    EXPECT(ranked(got, n, want, 3), "facts: expected birthday, budget, allergy");
    strata_query_free(q);
}

static void bad_input(strata_db *db) {
    strata_query *q;
    strata_txn *r;
    strata_query_result res[2];
    size_t n;
    float v[3] = { 1, 0, 0 };
    CHECK(strata_query_create(&q));
    EXPECT(strata_query_set_weight(q, STRATA_QUERY_RECENCY, -1) == STRATA_EINVAL, "negative weight accepted");
    EXPECT(strata_query_set_vector(q, STRATA_METRIC_COSINE, v, 3, 0, 1, 0) == STRATA_EINVAL, "k = 0 accepted");
    CHECK(strata_query_set_vector(q, STRATA_METRIC_COSINE, v, 3, 2, 1, 0));
    CHECK(strata_begin_read(db, &r));
    EXPECT(strata_query_run(r, q, res, 2, &n, NULL) == STRATA_EINVAL, "dimension mismatch accepted");
    CHECK(strata_query_set_anchor(q, 424242, STRATA_BLOB_BOTH, 0, 1, 0));
    EXPECT(strata_query_run(r, q, res, 2, &n, NULL) == STRATA_NOTFOUND, "unknown anchor accepted");
    strata_abort(r);
    strata_query_free(q);
    printf("\nbad input: negative weight, k = 0, dimension mismatch, unknown anchor all rejected\n");
}

int main(void) {
    strata_db *db;
    CHECK(strata_open("agent-memory", STRATA_CREATE | STRATA_INMEMORY, &db));
    CHECK(strata_set_clock(db, clock_fn, NULL));
    for (size_t i = 0; i < NNOTES; i++) remember(db, &notes[i]);
    link_notes(db, "tea", "coffee", STRATA_BLOB_SUPERSEDES, "preference changed");
    {   /* the superseded note is also tagged, so plain filters can drop it */
        strata_txn *w;
        CHECK(strata_begin_write(db, &w));
        CHECK(strata_blob_tag_add(w, find("coffee")->id, "superseded"));
        CHECK(strata_commit(w));
    }
    link_notes(db, "hotel", "trip", STRATA_BLOB_DERIVED_FROM, "follow-up");
    link_notes(db, "summary", "trip", STRATA_BLOB_DERIVED_FROM, NULL);
    link_notes(db, "summary", "hotel", STRATA_BLOB_DERIVED_FROM, NULL);
    link_notes(db, "summary", "budget", STRATA_BLOB_DERIVED_FROM, NULL);
    printf("agent memory: %d notes, 2 users, tags, lineage; embeddings: bag of words (%d dims)\n",
           NNOTES, DIM);
    q_drink(db, 0);
    q_drink(db, 1);
    q_drink_current(db);
    q_trip(db);
    q_facts(db);
    bad_input(db);
    strata_close(db);
    if (g_failures) {
        printf("\nagent_memory: %d unexpected ranking(s)\n", g_failures);
        return 1;
    }
    printf("\nagent_memory: every ranking as expected\n");
    return 0;
}
