/* craftkv: the checks before a start that forces the survivors' configuration (recovery
 * from a lost quorum: docs/design/core.md, "Recovery from a lost quorum"; the rule itself
 * is libcraft's, craft_config.force_servers).
 *
 * The members are those this node knows: its own list (--initial-cluster, or the members
 * at its join) and the replicated member table as its store last applied it (members
 * added later are only there). Every member but this node is asked for its raft state
 * (INFO raft, over its client port, with --requirepass):
 *   - one that reports a leader: refused (the cluster has a quorum);
 *   - one that cannot be reached: lost, as recovery assumes, unless it is a survivor named
 *     in the list: refused (its term and log must be known; started without a quorum it
 *     elects nobody);
 *   - one that refuses the password, or answers something unreadable: refused (it might
 *     have a leader);
 *   - otherwise its term and last log term raise the forced entry's minimum term (so no
 *     survivor holds an entry of the forced term), and a survivor whose commit index
 *     passes this node's last applied index is reported: the survivor with the highest
 *     commit index must be the one forced (only it surely holds every entry a survivor
 *     knew committed). Workers are not running yet: the calls block the start. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv/server_internal.h"

#define PROBE_TIMEOUT_MS 1000

/* INFO raft's value of `name` (a "\nname:" line), or 0 with *found false. */
static uint64_t info_field(const char *text, const char *name, bool *found)
{
    char key[48];
    snprintf(key, sizeof key, "\n%s:", name);
    const char *p = strstr(text, key);
    *found = p != NULL;
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

struct probe {
    uint64_t leader, term, last_log_term, commit;
};

/* 1: answered (*out filled); 0: unreachable; -1: reached but no readable answer (err). */
static int probe(const struct craftkv_server *s, uint64_t id, const char *addr,
                 struct probe *out, char *err, size_t cap)
{
    int fd = craftkv_client_connect(addr, PROBE_TIMEOUT_MS, s->opts.requirepass);
    if (fd < 0 && errno == EACCES) {
        snprintf(err, cap, "member %" PRIu64 " at %s refused this node's password: cannot tell "
                           "whether it has a leader", id, addr);
        return -1;
    }
    if (fd < 0)
        return 0;
    struct craft_resp_arg cmd[2] = {{"INFO", 4}, {"raft", 4}};
    struct craft_resp_buf reply = {0};
    int rc = -1;
    if (craftkv_client_call(fd, 2, cmd, &reply) == 0 && reply.len > 1 && reply.data[0] == '$') {
        char *text = malloc(reply.len + 1);
        if (text) {
            memcpy(text, reply.data, reply.len);
            text[reply.len] = '\0';
            bool f1, f2, f3, f4;
            out->leader = info_field(text, "leader_id", &f1);
            out->term = info_field(text, "term", &f2);
            out->last_log_term = info_field(text, "last_log_term", &f3);
            out->commit = info_field(text, "commit_index", &f4);
            rc = f1 && f2 && f3 && f4 ? 1 : -1;
            free(text);
        }
    }
    if (rc < 0)
        snprintf(err, cap, "member %" PRIu64 " at %s answered INFO raft with nothing readable: "
                           "cannot tell whether it has a leader", id, addr);
    craft_resp_buf_free(&reply);
    close(fd);
    return rc;
}

int craftkv_recover_check(const struct craftkv_server *s, uint64_t applied,
                          struct craftkv_member *survivors, uint64_t *min_term, char *err,
                          size_t cap)
{
    const struct craftkv_opts *o = &s->opts;
    /* The members known: the list, then the table's records of others. */
    struct craftkv_member known[CRAFTKV_NODES_MAX + CRAFT_KV_MEMBERS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < o->n_members; i++)
        known[n++] = o->members[i];
    struct craft_kv_member *recs = malloc(CRAFT_KV_MEMBERS_MAX * sizeof *recs);
    size_t n_recs = 0;
    struct craft_kv_read *r;
    if (recs && craft_kv_read_begin(craftkv_main_group(s)->sm, &r) == CRAFT_OK) {
        if (craft_kv_read_members(r, recs, CRAFT_KV_MEMBERS_MAX, &n_recs) != CRAFT_OK)
            n_recs = 0;
        craft_kv_read_end(r);
    }
    for (size_t i = 0; i < n_recs && i < CRAFT_KV_MEMBERS_MAX; i++) {
        size_t k = 0;
        while (k < n && known[k].id != recs[i].id)
            k++;
        if (k < n)
            continue;
        known[n] = (struct craftkv_member){.id = recs[i].id};
        snprintf(known[n].peer_addr, sizeof known[n].peer_addr, "%s", recs[i].peer_addr);
        snprintf(known[n].client_addr, sizeof known[n].client_addr, "%s", recs[i].client_addr);
        n++;
    }
    free(recs);
    for (size_t k = 0; k < o->n_force_survivors; k++) {
        size_t i = 0;
        while (i < n && known[i].id != o->force_survivors[k])
            i++;
        if (i == n) {
            snprintf(err, cap, "survivor %" PRIu64 " is not a member this node knows the "
                               "addresses of", o->force_survivors[k]);
            return -1;
        }
        survivors[k] = known[i];
    }
    *min_term = 0;
    for (size_t i = 0; i < n; i++) {
        if (known[i].id == o->id)
            continue;
        bool named = false;
        for (size_t k = 0; k < o->n_force_survivors; k++)
            named |= o->force_survivors[k] == known[i].id;
        struct probe p;
        int rc = probe(s, known[i].id, known[i].client_addr, &p, err, cap);
        if (rc < 0)
            return -1;
        if (rc == 0 && named) {
            snprintf(err, cap, "survivor %" PRIu64 " at %s does not answer: start it first (it "
                               "elects nobody without a quorum) so that its term and log are "
                               "known", known[i].id, known[i].client_addr);
            return -1;
        }
        if (rc == 0)
            continue; /* lost */
        if (p.leader != 0) {
            snprintf(err, cap, "member %" PRIu64 " at %s reports leader %" PRIu64 ": the "
                               "cluster has a quorum (recovery is for one that lost it for "
                               "good; a survivor names its old leader for an election timeout "
                               "after the loss: retry then)", known[i].id,
                     known[i].client_addr, p.leader);
            return -1;
        }
        uint64_t t = p.term > p.last_log_term ? p.term : p.last_log_term;
        if (t > *min_term)
            *min_term = t;
        if (named && p.commit > applied)
            fprintf(stderr, "craftkv: warning: survivor %" PRIu64 " reports commit index %" PRIu64
                            ", past this node's last applied %" PRIu64 ": force the survivor "
                            "with the highest commit index, or writes it applied may be lost\n",
                    known[i].id, p.commit, applied);
    }
    return 0;
}
