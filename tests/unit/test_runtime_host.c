/* Hosts: several Raft groups per process on one loop thread and one transport.
 *
 * Three hosts (node ids 1..3) each run a replica of GROUPS groups, over the in-memory
 * network, and over TCP with disk storage: a data directory per group, or the host's
 * shared log (both with snapshots every few entries, so that logs are compacted per group
 * and a replica that fell behind catches up by a snapshot install). Every group elects and
 * replicates on its own; a host that stops takes all its groups down and the others
 * elect where it led; a host restarted from disk brings every group back from its
 * storage; a group removed from one host leaves the others running; a message for a
 * group a host does not have is dropped and counted. */
#include "unit.h"
#include "runtime_cluster.h"

#define HOSTS 3
#define GROUPS 8
#define EXTRA_GROUP 100 /* hosted by 1 and 2 only; its configuration names 3 as well */

enum storage { MEM, GROUP_DIRS, SHARED_LOG };

struct world {
    bool tcp;
    enum storage storage;
    char base_dir[256];
    struct craft_mem_net *net;
    uint16_t ports[HOSTS + 1];
    struct craft_host *hosts[HOSTS + 1];
    /* Replicas by host and group index (0..GROUPS-1 are groups 1..GROUPS; GROUPS is
     * EXTRA_GROUP). */
    struct craft_node *g[HOSTS + 1][GROUPS + 1];
    struct counter fsms[HOSTS + 1][GROUPS + 1];
    uint32_t election_timeout_ms, heartbeat_ms;
};

static uint64_t group_id(int gi)
{
    return gi < GROUPS ? (uint64_t)gi + 1 : EXTRA_GROUP;
}

static void servers(const struct world *w, struct craft_server *s)
{
    for (int i = 0; i < HOSTS; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].id = (uint64_t)i + 1;
        s[i].voter = true;
        if (w->tcp) {
            snprintf(s[i].addr, sizeof s[i].addr, "127.0.0.1:%u", w->ports[i + 1]);
        }
    }
}

static void world_init(struct world *w, enum storage storage)
{
    memset(w, 0, sizeof *w);
    bool tcp = storage != MEM;
    w->tcp = tcp;
    w->storage = storage;
    rc_timing(&w->election_timeout_ms, &w->heartbeat_ms);
    if (tcp) {
        snprintf(w->base_dir, sizeof w->base_dir, "/tmp/craft-host-XXXXXX");
        CHECK(mkdtemp(w->base_dir) != NULL);
    } else {
        w->net = craft_mem_net_create();
    }
    for (int h = 1; h <= HOSTS; h++) {
        w->ports[h] = tcp ? rc_free_port() : 0;
        for (int gi = 0; gi <= GROUPS; gi++) {
            pthread_mutex_init(&w->fsms[h][gi].mu, NULL);
        }
    }
}

static bool hosts_group(int h, int gi)
{
    return gi < GROUPS || h != 3;
}

static void add_group(struct world *w, int h, int gi)
{
    struct craft_config cfg;
    craft_config_default(&cfg, (uint64_t)h);
    char dir[400];
    if (w->storage == GROUP_DIRS) {
        snprintf(dir, sizeof dir, "%s/h%d-g%" PRIu64, w->base_dir, h, group_id(gi));
        cfg.data_dir = dir;
    }
    struct craft_server s[HOSTS];
    servers(w, s);
    cfg.initial_servers = s;
    cfg.n_initial_servers = HOSTS;
    cfg.election_timeout_ms = w->election_timeout_ms;
    cfg.heartbeat_ms = w->heartbeat_ms;
    cfg.snapshot_threshold_entries = 0;
    if (w->storage != MEM) {
        cfg.snapshot_threshold_entries = 3;
        cfg.trailing_entries = 1;
    }
    struct craft_fsm fsm = counter_fsm(&w->fsms[h][gi]);
    char err[256];
    int rc = craft_host_add_group(w->hosts[h], group_id(gi), &cfg, &fsm, &w->g[h][gi], err,
                                  sizeof err);
    if (rc != CRAFT_OK) {
        fprintf(stderr, "host %d group %" PRIu64 ": %s\n", h, group_id(gi), err);
    }
    CHECK(rc == CRAFT_OK);
}

static void host_start(struct world *w, int h)
{
    struct craft_host_config hc;
    craft_host_config_default(&hc, (uint64_t)h);
    struct craft_server s[HOSTS];
    servers(w, s);
    if (w->tcp) {
        snprintf(hc.listen_addr, sizeof hc.listen_addr, "127.0.0.1:%u", w->ports[h]);
        hc.peers = s;
        hc.n_peers = HOSTS;
    } else {
        hc.transport = CRAFT_TRANSPORT_MEM;
        hc.mem_net = w->net;
    }
    hc.heartbeat_ms = w->heartbeat_ms;
    hc.peer_timeout_ms = w->election_timeout_ms;
    char dir[400];
    if (w->storage == SHARED_LOG) {
        snprintf(dir, sizeof dir, "%s/h%d", w->base_dir, h);
        hc.data_dir = dir;
        hc.log_segment_bytes = 4u << 20;
    }
    char err[256];
    int rc = craft_host_create(&hc, &w->hosts[h], err, sizeof err);
    if (rc != CRAFT_OK) {
        fprintf(stderr, "host %d: %s\n", h, err);
    }
    CHECK(rc == CRAFT_OK);
    for (int gi = 0; gi <= GROUPS && rc == CRAFT_OK; gi++) {
        if (hosts_group(h, gi)) {
            add_group(w, h, gi);
        }
    }
}

static void host_stop(struct world *w, int h)
{
    craft_host_destroy(w->hosts[h]);
    w->hosts[h] = NULL;
    memset(w->g[h], 0, sizeof w->g[h]);
}

static void world_destroy(struct world *w)
{
    for (int h = 1; h <= HOSTS; h++) {
        if (w->hosts[h] != NULL) {
            host_stop(w, h);
        }
        for (int gi = 0; gi <= GROUPS; gi++) {
            pthread_mutex_destroy(&w->fsms[h][gi].mu);
        }
    }
    craft_mem_net_destroy(w->net);
    if (w->base_dir[0] != '\0') {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", w->base_dir);
        CHECK(system(cmd) == 0);
    }
}

/* The host whose replica of group gi leads, agreed on by every running replica; 0 after
 * the wait. */
static int group_leader(struct world *w, int gi)
{
    uint64_t end = rc_mono_ms() + RC_WAIT_MS;
    while (rc_mono_ms() < end) {
        int leader = 0;
        for (int h = 1; h <= HOSTS; h++) {
            if (w->g[h][gi] != NULL && craft_state(w->g[h][gi]) == CRAFT_LEADER) {
                leader = h;
            }
        }
        bool agree = leader != 0;
        for (int h = 1; h <= HOSTS && agree; h++) {
            agree = w->g[h][gi] == NULL || craft_leader(w->g[h][gi], NULL, 0) == (uint64_t)leader;
        }
        if (agree) {
            return leader;
        }
        usleep(5000);
    }
    return 0;
}

/* Applies count increments of delta to group gi through its leader (retrying across a
 * leader change) and waits until every running replica applied them. */
static void group_add(struct world *w, int gi, uint64_t delta, int count, uint64_t total)
{
    for (int i = 0; i < count; i++) {
        bool ok = false;
        uint64_t end = rc_mono_ms() + RC_WAIT_MS;
        while (!ok && rc_mono_ms() < end) {
            int l = group_leader(w, gi);
            if (l == 0) {
                break;
            }
            ok = rc_wait_release(craft_apply(w->g[l][gi], &delta, 8, 5000), 10000, NULL) ==
                 CRAFT_OK;
        }
        CHECK(ok);
    }
    uint64_t end = rc_mono_ms() + RC_WAIT_MS;
    bool all = false;
    while (!all && rc_mono_ms() < end) {
        all = true;
        for (int h = 1; h <= HOSTS; h++) {
            if (w->g[h][gi] != NULL && counter_total(&w->fsms[h][gi]) != total) {
                all = false;
            }
        }
        if (!all) {
            usleep(5000);
        }
    }
    if (!all) {
        for (int h = 1; h <= HOSTS; h++) {
            if (w->g[h][gi] != NULL) {
                struct craft_stats st;
                craft_stats(w->g[h][gi], &st);
                fprintf(stderr, "group %" PRIu64 " host %d: total %" PRIu64 " (want %" PRIu64
                                ") role %d term %" PRIu64 " commit %" PRIu64 " applied %" PRIu64
                                " first %" PRIu64 " last %" PRIu64 " snap %" PRIu64
                                " persisted %" PRIu64 " installs %" PRIu64 " taken %" PRIu64
                                " failed %d cmds %" PRIu64 " restores %d\n",
                        group_id(gi), h, counter_total(&w->fsms[h][gi]), total, (int)st.role,
                        st.term, st.commit, st.applied, st.first_index, st.last_index,
                        st.snap_index, st.persisted, st.snapshots_installed, st.snapshots_taken,
                        st.failed, (uint64_t)w->fsms[h][gi].n_cmds, (int)w->fsms[h][gi].restores);
            }
        }
    }
    CHECK(all);
}

/* The groups of host h that can quiesce: those with all three replicas running (a leader
 * waits for every member to hold its whole log; group EXTRA_GROUP lacks one from the
 * start). */
static uint64_t quiescable(const struct world *w, int h)
{
    uint64_t count = 0;
    for (int gi = 0; gi <= GROUPS; gi++) {
        bool all = true;
        for (int x = 1; x <= HOSTS; x++) {
            all = all && w->g[x][gi] != NULL;
        }
        count += all && w->g[h][gi] != NULL;
    }
    return count;
}

/* Waits until host h has `want` groups quiesced. */
static bool wait_quiesced(struct world *w, int h, uint64_t want)
{
    uint64_t end = rc_mono_ms() + RC_WAIT_MS;
    struct craft_host_stats hs;
    do {
        craft_host_stats(w->hosts[h], &hs);
    } while (hs.groups_quiesced != want && rc_mono_ms() < end && usleep(5000) == 0);
    if (hs.groups_quiesced != want) {
        fprintf(stderr, "host %d: %" PRIu64 " groups quiesced, want %" PRIu64 "\n", h,
                hs.groups_quiesced, want);
        for (int gi = 0; gi <= GROUPS; gi++) {
            struct craft_stats st;
            if (w->g[h][gi] != NULL) {
                craft_stats(w->g[h][gi], &st);
                if (!st.quiesced) {
                    fprintf(stderr, "  group %" PRIu64 ": role %d term %" PRIu64 " commit %"
                            PRIu64 " last %" PRIu64 " applied %" PRIu64 " leader %" PRIu64 "\n",
                            group_id(gi), (int)st.role, st.term, st.commit, st.last_index,
                            st.applied, st.leader);
                }
            }
        }
    }
    return hs.groups_quiesced == want;
}

/* What a host with a data directory keeps: the shared log's segments, one snapshot
 * directory per group, nothing else (no log per group). */
static void check_shared_layout(struct world *w, int h)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s/h%d/log | grep -q '[.]glog$'", w->base_dir, h);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "test -d %s/h%d/groups/%016x/snapshots", w->base_dir, h,
             (unsigned)group_id(1));
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "test $(find %s/h%d -name wal | wc -l) = 0", w->base_dir, h);
    CHECK(system(cmd) == 0);
    struct craft_host_stats hs;
    craft_host_stats(w->hosts[h], &hs);
    CHECK(hs.log_writes > 0 && hs.log_syncs > 0 && hs.log_entries > 0);
    /* Every group's entries went through the shared log. */
    uint64_t entries = 0;
    for (int gi = 0; gi <= GROUPS; gi++) {
        if (w->g[h][gi] != NULL) {
            struct craft_stats st;
            craft_stats(w->g[h][gi], &st);
            CHECK(st.entries_written > 0);
            entries += st.entries_written;
        }
    }
    CHECK(hs.log_entries >= entries);
}

static void run(enum storage storage)
{
    bool tcp = storage != MEM;
    struct world w;
    world_init(&w, storage);
    for (int h = 1; h <= HOSTS; h++) {
        host_start(&w, h);
    }
    /* Every group elects and replicates on its own; the groups' totals differ, so a
     * message delivered to the wrong group would show. */
    for (int gi = 0; gi <= GROUPS; gi++) {
        CHECK(group_leader(&w, gi) != 0);
        group_add(&w, gi, (uint64_t)gi + 1, 3, 3 * ((uint64_t)gi + 1));
    }
    /* A group the host already has is refused; the host's groups are counted. */
    struct craft_config cfg;
    craft_config_default(&cfg, 1);
    struct craft_fsm fsm = counter_fsm(&w.fsms[1][0]);
    struct craft_node *dup = NULL;
    char err[256];
    CHECK(craft_host_add_group(w.hosts[1], 1, &cfg, &fsm, &dup, err, sizeof err) ==
          CRAFT_EINVAL);
    CHECK(dup == NULL && strstr(err, "already hosted") != NULL);
    struct craft_host_stats hs;
    craft_host_stats(w.hosts[1], &hs);
    CHECK(hs.groups == GROUPS + 1 && hs.rounds > 0);
    /* Host 3 lacks EXTRA_GROUP, whose leader sends to it: dropped and counted. */
    uint64_t end = rc_mono_ms() + RC_WAIT_MS;
    do {
        craft_host_stats(w.hosts[3], &hs);
    } while (hs.msgs_unknown_group == 0 && rc_mono_ms() < end && usleep(5000) == 0);
    CHECK(hs.msgs_unknown_group > 0);
    CHECK(hs.groups == GROUPS);

    /* One group removed from one host: that replica's peers go on without it. */
    craft_node_destroy(w.g[2][0]);
    w.g[2][0] = NULL;
    group_add(&w, 0, 1, 2, 3 + 2);
    craft_host_stats(w.hosts[2], &hs);
    CHECK(hs.groups == GROUPS);
    /* Its storage on host 2 can then be dropped (not while a group is hosted, and only on
     * a host with storage of its own). */
    int drop = craft_host_drop_group(w.hosts[2], 1, err, sizeof err);
    if (storage == SHARED_LOG) {
        CHECK(drop == CRAFT_OK);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "test ! -e %s/h2/groups/%016x", w.base_dir, 1u);
        CHECK(system(cmd) == 0);
        CHECK(craft_host_drop_group(w.hosts[2], 2, err, sizeof err) == CRAFT_EINVAL);
        CHECK(strstr(err, "hosted") != NULL);
    } else {
        CHECK(drop == CRAFT_EINVAL && strstr(err, "data_dir") != NULL);
    }

    if (storage == SHARED_LOG) {
        check_shared_layout(&w, 2);
    }

    /* Host 1 stops: all its groups go down at once; every group that has a majority left
     * elects where needed and goes on (group 1 has lost two replicas: it waits). */
    host_stop(&w, 1);
    for (int gi = 1; gi < GROUPS; gi++) {
        CHECK(group_leader(&w, gi) != 0);
        group_add(&w, gi, (uint64_t)gi + 1, 2, 5 * ((uint64_t)gi + 1));
    }
    if (tcp) {
        /* Restarted from disk, host 1 recovers every group from its own storage and
         * catches up (its counters restart empty, as in a new process: what they show
         * came from the log). */
        for (int gi = 0; gi <= GROUPS; gi++) {
            struct counter *k = &w.fsms[1][gi];
            pthread_mutex_lock(&k->mu);
            k->total = k->applied = k->n_cmds = k->restores = 0;
            pthread_mutex_unlock(&k->mu);
        }
        host_start(&w, 1);
        group_add(&w, 0, 1, 1, 3 + 2 + 1);
        for (int gi = 1; gi < GROUPS; gi++) {
            group_add(&w, gi, (uint64_t)gi + 1, 1, 6 * ((uint64_t)gi + 1));
        }
        group_add(&w, GROUPS, GROUPS + 1, 1, 4 * (GROUPS + 1));
        if (storage == SHARED_LOG) {
            check_shared_layout(&w, 1);
        }
    }
    /* Idle again, the groups whose replicas all run quiesce again. */
    for (int h = 1; h <= HOSTS; h++) {
        if (w.hosts[h] != NULL) {
            CHECK(wait_quiesced(&w, h, quiescable(&w, h)));
        }
    }
    if (storage == SHARED_LOG) {
        /* Host 3 restarts at once, while its peers' groups are quiesced: its new
         * incarnation wakes them, their leaders heartbeat its new replicas, and every
         * group quiesces again once idle. */
        host_stop(&w, 3);
        for (int gi = 0; gi < GROUPS; gi++) {
            struct counter *k = &w.fsms[3][gi];
            pthread_mutex_lock(&k->mu);
            k->total = k->applied = k->n_cmds = k->restores = 0;
            pthread_mutex_unlock(&k->mu);
        }
        host_start(&w, 3);
        for (int h = 1; h <= HOSTS; h++) {
            CHECK(wait_quiesced(&w, h, quiescable(&w, h)));
        }
        group_add(&w, 3, 4, 1, 7 * 4);
    }
    world_destroy(&w);
}

/* Quiescence: idle groups stop ticking on every replica and send nothing; work wakes a
 * group; a quiesced leader that leaves wakes its followers; the followers of a leader
 * whose process stops learn it from the process heartbeats and elect. */
static void test_quiesce(void)
{
    struct world w;
    world_init(&w, MEM);
    for (int h = 1; h <= HOSTS; h++) {
        host_start(&w, h);
    }
    for (int gi = 0; gi <= GROUPS; gi++) {
        CHECK(group_leader(&w, gi) != 0);
        group_add(&w, gi, (uint64_t)gi + 1, 1, (uint64_t)gi + 1);
    }
    for (int h = 1; h <= HOSTS; h++) {
        CHECK(wait_quiesced(&w, h, quiescable(&w, h)));
    }
    struct craft_stats xs;
    craft_stats(w.g[1][GROUPS], &xs);
    CHECK(!xs.quiesced); /* its leader waits for host 3, which lacks it */
    /* Quiesced, a group sends nothing (stats requests do not wake it). */
    uint64_t sent[HOSTS + 1][GROUPS + 1];
    for (int h = 1; h <= HOSTS; h++) {
        for (int gi = 0; gi <= GROUPS; gi++) {
            struct craft_stats st;
            if (w.g[h][gi] != NULL) {
                craft_stats(w.g[h][gi], &st);
                sent[h][gi] = st.msgs_sent;
            }
        }
    }
    usleep(5 * 1000 * w.heartbeat_ms);
    for (int h = 1; h <= HOSTS; h++) {
        for (int gi = 0; gi <= GROUPS; gi++) {
            struct craft_stats st;
            if (w.g[h][gi] != NULL && gi < GROUPS) {
                craft_stats(w.g[h][gi], &st);
                CHECK(st.quiesced && st.msgs_sent == sent[h][gi]);
            }
        }
        struct craft_host_stats hs;
        craft_host_stats(w.hosts[h], &hs);
        CHECK(hs.groups_quiesced == quiescable(&w, h));
    }

    /* Work wakes a group on every replica; idle again, it quiesces again. */
    group_add(&w, 2, 3, 2, 3 * 3);
    for (int h = 1; h <= HOSTS; h++) {
        CHECK(wait_quiesced(&w, h, quiescable(&w, h)));
    }

    /* A quiesced leader replica removed: the two others wake and elect. */
    int l = group_leader(&w, 1);
    CHECK(l != 0);
    craft_node_destroy(w.g[l][1]);
    w.g[l][1] = NULL;
    CHECK(group_leader(&w, 1) != 0 && group_leader(&w, 1) != l);
    group_add(&w, 1, 2, 1, 2 * 2);

    /* The leader process of quiesced groups stops: the other processes stop hearing it,
     * wake the groups it led, and those elect. */
    CHECK(wait_quiesced(&w, 3, quiescable(&w, 3)));
    l = group_leader(&w, 3);
    CHECK(l != 0);
    host_stop(&w, l);
    for (int gi = 2; gi < GROUPS; gi++) {
        CHECK(group_leader(&w, gi) != 0);
        group_add(&w, gi, (uint64_t)gi + 1, 1, (uint64_t)gi + 1 + (gi == 2 ? 6 : 0) +
                                                  ((uint64_t)gi + 1));
    }
    world_destroy(&w);
}

/* Bad configurations get a clear error and leave nothing running. */
static void test_bad_input(void)
{
    char err[256];
    struct craft_host *h = (struct craft_host *)1;
    struct craft_host_config hc;
    craft_host_config_default(&hc, 0);
    CHECK(craft_host_create(&hc, &h, err, sizeof err) == CRAFT_EINVAL);
    CHECK(h == NULL && strstr(err, "id") != NULL);
    craft_host_config_default(&hc, 1);
    hc.transport = CRAFT_TRANSPORT_MEM; /* no mem_net */
    CHECK(craft_host_create(&hc, &h, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "mem_net") != NULL);
    craft_host_config_default(&hc, 1);
    hc.transport = 9;
    CHECK(craft_host_create(&hc, &h, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "transport") != NULL);
    craft_host_config_default(&hc, 1);
    snprintf(hc.listen_addr, sizeof hc.listen_addr, "localhost:1"); /* not numeric */
    CHECK(craft_host_create(&hc, &h, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "localhost:1") != NULL);

    /* The shared log: bad limits, and a data directory that cannot be made. */
    craft_host_config_default(&hc, 1);
    hc.data_dir = "/tmp";
    hc.log_segment_bytes = 1 << 20;
    CHECK(craft_host_create(&hc, &h, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "log_segment_bytes") != NULL);
    hc.log_segment_bytes = 4 << 20;
    hc.entry_bytes_max = 0;
    CHECK(craft_host_create(&hc, &h, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "entry_bytes_max") != NULL);
    hc.entry_bytes_max = 1 << 20;
    hc.data_dir = "/dev/null/host";
    CHECK(craft_host_create(&hc, &h, err, sizeof err) != CRAFT_OK);
    CHECK(h == NULL && strstr(err, "/dev/null/host") != NULL);

    /* A host whose frames are too small for a group's limits refuses the group; a bad
     * group configuration or state machine is refused; the host goes on. */
    craft_host_config_default(&hc, 1);
    hc.frame_bytes_max = 2 << 20; /* the default group limits need 4 MiB */
    CHECK(craft_host_create(&hc, &h, err, sizeof err) == CRAFT_OK);
    struct counter k;
    memset(&k, 0, sizeof k);
    pthread_mutex_init(&k.mu, NULL);
    struct craft_fsm fsm = counter_fsm(&k);
    struct craft_config cfg;
    craft_config_default(&cfg, 1);
    struct craft_node *g = (struct craft_node *)1;
    CHECK(craft_host_add_group(h, 5, &cfg, &fsm, &g, err, sizeof err) == CRAFT_EINVAL);
    CHECK(g == NULL && strstr(err, "frame_bytes_max") != NULL);
    cfg.append_bytes_max = 64 << 10;
    cfg.entry_bytes_max = 64 << 10;
    cfg.snapshot_chunk_bytes_max = 64 << 10;
    cfg.election_timeout_ms = 0;
    CHECK(craft_host_add_group(h, 5, &cfg, &fsm, &g, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "election_timeout_ms") != NULL);
    cfg.election_timeout_ms = 1000;
    struct craft_fsm no_apply = fsm;
    no_apply.apply = NULL;
    CHECK(craft_host_add_group(h, 5, &cfg, &no_apply, &g, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "apply") != NULL);
    struct craft_host_stats hs;
    craft_host_stats(h, &hs);
    CHECK(hs.groups == 0);
    /* A good group still joins, and leaves with the host. */
    CHECK(craft_host_add_group(h, 5, &cfg, &fsm, &g, err, sizeof err) == CRAFT_OK);
    craft_host_stats(h, &hs);
    CHECK(hs.groups == 1);
    craft_host_destroy(h);

    /* A group whose entries exceed the shared log's records is refused. */
    char dir[] = "/tmp/craft-host-bad-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    craft_host_config_default(&hc, 1);
    hc.data_dir = dir;
    hc.log_segment_bytes = 4 << 20;
    hc.entry_bytes_max = 32 << 10;
    CHECK(craft_host_create(&hc, &h, err, sizeof err) == CRAFT_OK);
    CHECK(craft_host_add_group(h, 5, &cfg, &fsm, &g, err, sizeof err) == CRAFT_EINVAL);
    CHECK(g == NULL && strstr(err, "entry_bytes_max") != NULL);
    cfg.entry_bytes_max = 32 << 10;
    CHECK(craft_host_add_group(h, 5, &cfg, &fsm, &g, err, sizeof err) == CRAFT_OK);
    craft_host_destroy(h);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    pthread_mutex_destroy(&k.mu);
}

static void test_mem(void)
{
    run(MEM);
}

static void test_tcp_disk(void)
{
    run(GROUP_DIRS);
}

static void test_tcp_shared_log(void)
{
    run(SHARED_LOG);
}

int main(void)
{
    run_case("bad_input", test_bad_input);
    run_case("mem", test_mem);
    run_case("tcp_disk", test_tcp_disk);
    run_case("tcp_shared_log", test_tcp_shared_log);
    run_case("quiesce", test_quiesce);
    return unit_finish();
}
