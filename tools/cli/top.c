/*
 * top.c - `spool top ENDPOINT`: a live ncurses view of a running program, asking its admin endpoint
 * for a snapshot every second. Rates, load and wait quantiles are those of the last interval: the
 * difference between two snapshots (the first frame, with nothing before it, shows averages since
 * start). Threads on top with a load bar; for a node, its peers below them (hidden and shown by
 * a key press); then the busiest mailboxes, sorted by a key press.
 */
#include "cli.h"

#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char top_usage[] =
    "usage: spool top [--interval MS] [--timeout MS] ENDPOINT\n"
    "\n"
    "A live view of the program serving ENDPOINT (its admin endpoint), refreshed every second:\n"
    "  threads    load (busy share of the last interval), messages/s, wake-ups/s, actors, ready\n"
    "  peers      when the program is a node: each peer's state, heartbeat round trip,\n"
    "             messages/s and bytes/s in and out, send queue, missed heartbeats, dead letters\n"
    "  mailboxes  the busiest actors: depth, high-water, in/s (enqueued), out/s (dequeued), and\n"
    "             p50 / p99 of the time a message waited in the mailbox over the last interval\n"
    "             (from the sampled messages; '-' when none was sampled)\n"
    "\n"
    "Keys: d sort by depth, i by in/s, o by out/s, w by p99 wait, n by name; p hides or shows the\n"
    "peers; q quits (so do Ctrl-C and SIGTERM).\n"
    "\n"
    "  --interval MS  refresh every MS ms (default 1000)\n"
    "  --timeout MS   a request without an answer within MS ms is reported (default 2000); the\n"
    "                 first one ends spool top with exit status 1, later ones are retried\n";

typedef enum top_sort {
    SORT_DEPTH = 'd',
    SORT_IN = 'i',
    SORT_OUT = 'o',
    SORT_WAIT = 'w',
    SORT_NAME = 'n'
} top_sort;

/* What one mailbox row shows: figures from two snapshots. */
typedef struct top_row {
    const cli_actor *actor;
    char label[64];
    double in_rate, out_rate;
    double p50, p99; /* -1: no message sampled in the interval */
} top_row;

typedef struct top_view {
    cli_client *client;
    cli_snapshot *now;
    cli_snapshot *before; /* NULL: the first frame, rates since start */
    top_sort sort;
    double interval;
    char problem[512]; /* the last request's failure, "" when it answered */
    int colors;
    const char *arrow; /* marks the sorted column */
    top_row *rows;
    size_t row_capacity;
    int hide_peers; /* the p key */
} top_view;

static volatile sig_atomic_t top_stop;

static void top_on_signal(int signal_number) {
    (void)signal_number;
    top_stop = 1;
}

enum { COLOR_LOW = 1, COLOR_MIDDLE, COLOR_HIGH, COLOR_TITLE, COLOR_PROBLEM };

static const char *sort_name(top_sort sort) {
    switch (sort) {
    case SORT_IN:
        return "in/s";
    case SORT_OUT:
        return "out/s";
    case SORT_WAIT:
        return "p99 wait";
    case SORT_NAME:
        return "name";
    case SORT_DEPTH:
        break;
    }
    return "depth";
}

/* ---------------------------------------------------------------------------------------------- */
/* figures                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/* Seconds between the two snapshots by the runtime's own clock, or since start. */
static double top_elapsed(const top_view *view) {
    double since = view->before != NULL ? view->before->uptime_seconds : 0;
    return view->now->uptime_seconds - since;
}

static const cli_thread *thread_before(const top_view *view, int thread) {
    for (size_t i = 0; view->before != NULL && i < view->before->thread_count; i++)
        if (view->before->threads[i].thread == thread)
            return &view->before->threads[i];
    return NULL;
}

static const cli_peer *peer_before(const top_view *view, const char *node) {
    return view->before != NULL ? cli_snapshot_find_peer(view->before, node) : NULL;
}

/* Is the program a node (then the peers panel and its key are shown)? */
static int top_is_node(const top_view *view) {
    return view->now->node[0] != '\0' || view->now->peer_count > 0;
}

/* `now` - `before` per second of the interval (before NULL: since start). */
static double top_rate(const top_view *view, uint64_t now, uint64_t before) {
    double elapsed = top_elapsed(view);
    return elapsed > 0 ? (double)cli_delta(now, before) / elapsed : 0;
}

static top_sort current_sort; /* for qsort's comparator: set just before sorting */

static int compare_rows(const void *a, const void *b) {
    const top_row *x = a, *y = b;
    double kx = 0, ky = 0;
    switch (current_sort) {
    case SORT_NAME: {
        int order = strcmp(x->label, y->label);
        if (order != 0)
            return order;
        break;
    }
    case SORT_IN:
        kx = x->in_rate, ky = y->in_rate;
        break;
    case SORT_OUT:
        kx = x->out_rate, ky = y->out_rate;
        break;
    case SORT_WAIT:
        kx = x->p99, ky = y->p99;
        break;
    case SORT_DEPTH:
        break;
    }
    if (kx != ky)
        return kx > ky ? -1 : 1;
    /* Then the deepest, then the busiest, then by id: a stable order from frame to frame. */
    if (x->actor->depth != y->actor->depth)
        return x->actor->depth > y->actor->depth ? -1 : 1;
    if (x->in_rate != y->in_rate)
        return x->in_rate > y->in_rate ? -1 : 1;
    size_t lx = strlen(x->actor->id), ly = strlen(y->actor->id);
    return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->actor->id, y->actor->id);
}

/* Fills view->rows from the two snapshots, sorted. Returns the number of rows. */
static size_t top_rows(top_view *view) {
    const cli_snapshot *now = view->now;
    if (now->actor_count > view->row_capacity) {
        top_row *grown = realloc(view->rows, now->actor_count * sizeof *grown);
        if (grown == NULL)
            return 0;
        view->rows = grown;
        view->row_capacity = now->actor_count;
    }
    double elapsed = top_elapsed(view);
    for (size_t i = 0; i < now->actor_count; i++) {
        const cli_actor *actor = &now->actors[i];
        const cli_actor *before =
            view->before != NULL ? cli_snapshot_find_actor(view->before, actor->id) : NULL;
        top_row *row = &view->rows[i];
        row->actor = actor;
        cli_actor_label(actor, row->label, sizeof row->label);
        uint64_t in = cli_delta(actor->enqueued, before != NULL ? before->enqueued : 0);
        uint64_t out = cli_delta(actor->dequeued, before != NULL ? before->dequeued : 0);
        row->in_rate = elapsed > 0 ? (double)in / elapsed : 0;
        row->out_rate = elapsed > 0 ? (double)out / elapsed : 0;
        const cli_histogram *wait_before = before != NULL ? &before->wait : NULL;
        row->p50 = cli_histogram_quantile(now, &actor->wait, wait_before, 0.50);
        row->p99 = cli_histogram_quantile(now, &actor->wait, wait_before, 0.99);
    }
    current_sort = view->sort;
    qsort(view->rows, now->actor_count, sizeof *view->rows, compare_rows);
    return now->actor_count;
}

/* ---------------------------------------------------------------------------------------------- */
/* drawing                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static void put_line(int y, int attributes, const char *text) {
    if (y >= LINES)
        return;
    attron(attributes);
    mvaddnstr(y, 0, text, COLS);
    attroff(attributes);
}

static void draw_header(const top_view *view) {
    const cli_snapshot *s = view->now;
    double elapsed = top_elapsed(view);
    uint64_t messages = cli_snapshot_messages(s);
    uint64_t messages_before = view->before != NULL ? cli_snapshot_messages(view->before) : 0;
    char up[32], rate[32], node[96] = "", line[640];
    if (top_is_node(view))
        snprintf(node, sizeof node, "   node %s", s->node[0] != '\0' ? s->node : "?");
    snprintf(
        line, sizeof line,
        "spool top - %s%s   up %s   %zu threads   %zu actors   %s msgs/s   %llu dead letters",
        cli_client_endpoint(view->client), node,
        cli_format_uptime(s->uptime_seconds, up, sizeof up), s->thread_count, s->actor_count,
        cli_format_count(elapsed > 0 ? (double)cli_delta(messages, messages_before) / elapsed : 0,
                         rate, sizeof rate),
        (unsigned long long)cli_snapshot_dead_letters(s));
    put_line(0, A_BOLD | (view->colors ? COLOR_PAIR(COLOR_TITLE) : 0), line);

    if (view->problem[0] != '\0') {
        snprintf(line, sizeof line, "%s; retrying", view->problem);
        put_line(1, A_BOLD | (view->colors ? COLOR_PAIR(COLOR_PROBLEM) : A_REVERSE), line);
        return;
    }
    char when[64];
    if (view->before != NULL)
        snprintf(when, sizeof when, "rates over the last %.1fs", elapsed);
    else
        snprintf(when, sizeof when, "rates since start (first frame)");
    if (!s->enabled)
        snprintf(line, sizeof line, "metrics are off in this runtime (SPOOL_METRICS=off)");
    else
        snprintf(line, sizeof line, "%s; waits from 1 in %u messages   sort: %s", when,
                 s->sample_every, sort_name(view->sort));
    put_line(1, 0, line);
}

/* Threads: returns the next free row. */
static int draw_threads(const top_view *view, int y, int most) {
    enum { BAR = 30 };
    const cli_snapshot *s = view->now;
    double elapsed = top_elapsed(view);
    char line[512];
    snprintf(line, sizeof line, "%6s %4s  %-*s %6s %9s %10s %7s %6s", "THREAD", "CPU", BAR + 2,
             "LOAD", "BUSY", "MSGS/S", "WAKEUPS/S", "ACTORS", "READY");
    put_line(y++, A_BOLD | A_UNDERLINE, line);
    size_t shown = s->thread_count;
    if ((int)shown > most)
        shown = most > 1 ? (size_t)most - 1 : 1;
    for (size_t i = 0; i < shown && y < LINES - 1; i++) {
        const cli_thread *t = &s->threads[i];
        const cli_thread *b = thread_before(view, t->thread);
        double busy =
            elapsed > 0 ? (t->busy_seconds - (b != NULL ? b->busy_seconds : 0)) / elapsed : 0;
        busy = busy < 0 ? 0 : busy > 1 ? 1 : busy;
        double messages =
            elapsed > 0 ? (double)cli_delta(t->messages, b != NULL ? b->messages : 0) / elapsed : 0;
        double wakeups =
            elapsed > 0 ? (double)cli_delta(t->wakeups, b != NULL ? b->wakeups : 0) / elapsed : 0;
        char cpu[16] = "-", rate[32], wake[32];
        if (t->cpu >= 0)
            snprintf(cpu, sizeof cpu, "%d", t->cpu);
        int filled = (int)(busy * BAR + 0.5);
        char bar[BAR + 1];
        memset(bar, '|', (size_t)filled);
        memset(bar + filled, ' ', (size_t)(BAR - filled));
        bar[BAR] = '\0';
        snprintf(line, sizeof line, "%6d %4s  [", t->thread, cpu);
        put_line(y, 0, line);
        int x = (int)strlen(line);
        int color = busy < 0.5 ? COLOR_LOW : busy < 0.85 ? COLOR_MIDDLE : COLOR_HIGH;
        if (view->colors)
            attron(COLOR_PAIR(color) | A_BOLD);
        if (x < COLS)
            mvaddnstr(y, x, bar, COLS - x);
        if (view->colors)
            attroff(COLOR_PAIR(color) | A_BOLD);
        x += BAR;
        snprintf(line, sizeof line, "] %5.1f%% %9s %10s %7llu %6llu", busy * 100,
                 cli_format_count(messages, rate, sizeof rate),
                 cli_format_count(wakeups, wake, sizeof wake), (unsigned long long)t->actors,
                 (unsigned long long)t->ready);
        if (x < COLS)
            mvaddnstr(y, x, line, COLS - x);
        y++;
    }
    if (shown < s->thread_count && y < LINES - 1) {
        snprintf(line, sizeof line, "  ... %zu more threads", s->thread_count - shown);
        put_line(y++, A_DIM, line);
    }
    return y;
}

/* Peers of a node: returns the next free row. At most `most` rows, the title included. */
static int draw_peers(const top_view *view, int y, int most) {
    const cli_snapshot *s = view->now;
    int name_width = 4;
    size_t up = 0;
    for (size_t i = 0; i < s->peer_count; i++) {
        int length = (int)strlen(s->peers[i].node);
        name_width = length > name_width ? length : name_width;
        up += strcmp(s->peers[i].state, "up") == 0;
    }
    if (name_width > 24)
        name_width = 24;
    char line[512];
    snprintf(line, sizeof line, "%-*s %-7s %8s %9s %9s %10s %10s %7s %8s %7s   (%zu up of %zu)",
             name_width, "PEER", "STATE", "RTT", "MSGS IN/S", "OUT/S", "BYTES IN/S", "OUT/S",
             "QUEUED", "MISSED", "DEAD", up, s->peer_count);
    put_line(y++, A_BOLD | A_UNDERLINE, line);
    size_t shown = s->peer_count;
    if ((int)shown > most - 1)
        shown = most > 2 ? (size_t)most - 2 : 1; /* room for the "... more" line */
    for (size_t i = 0; i < shown && y < LINES - 1; i++) {
        const cli_peer *p = &s->peers[i];
        const cli_peer *b = peer_before(view, p->node);
        char rtt[32], in[32], out[32], bytes_in[32], bytes_out[32], queued[32];
        snprintf(
            line, sizeof line, "%-*.*s %-7s %8s %9s %9s %10s %10s %7s %8llu %7llu", name_width,
            name_width, p->node, p->state[0] != '\0' ? p->state : "?",
            cli_format_seconds(p->rtt_seconds > 0 ? p->rtt_seconds : -1, rtt, sizeof rtt),
            cli_format_count(top_rate(view, p->messages_in, b ? b->messages_in : 0), in, sizeof in),
            cli_format_count(top_rate(view, p->messages_out, b ? b->messages_out : 0), out,
                             sizeof out),
            cli_format_count(top_rate(view, p->bytes_in, b ? b->bytes_in : 0), bytes_in,
                             sizeof bytes_in),
            cli_format_count(top_rate(view, p->bytes_out, b ? b->bytes_out : 0), bytes_out,
                             sizeof bytes_out),
            cli_format_count((double)p->queued_messages, queued, sizeof queued),
            (unsigned long long)p->heartbeats_missed, (unsigned long long)cli_peer_dead_letters(p));
        /* Not up, or a heartbeat missed in this interval: in red (bold without colors). */
        int troubled = strcmp(p->state, "up") != 0 ||
                       (b != NULL && p->heartbeats_missed > b->heartbeats_missed);
        int attributes = troubled ? A_BOLD | (view->colors ? COLOR_PAIR(COLOR_HIGH) : 0) : 0;
        put_line(y++, attributes, line);
    }
    if (shown < s->peer_count && y < LINES - 1) {
        snprintf(line, sizeof line, "  ... %zu more peers", s->peer_count - shown);
        put_line(y++, A_DIM, line);
    }
    if (s->peer_count == 0 && y < LINES - 1)
        put_line(y++, A_DIM, "(no peers yet)");
    return y;
}

typedef struct column {
    const char *title;
    int width;
    int left; /* left-aligned */
    top_sort sort;
} column;

static void draw_mailboxes(top_view *view, int y) {
    size_t count = top_rows(view);
    int id_width = 2, name_width = 4;
    for (size_t i = 0; i < count; i++) {
        int length = (int)strlen(view->rows[i].actor->id);
        id_width = length > id_width ? length : id_width;
        length = (int)strlen(view->rows[i].label);
        name_width = length > name_width ? length : name_width;
    }
    if (name_width > 24)
        name_width = 24;
    column columns[] = {
        {"ID", id_width, 1, 0},
        {"NAME", name_width, 1, SORT_NAME},
        {"THREAD", 6, 0, 0},
        {"DEPTH", 8, 0, SORT_DEPTH},
        {"HIGH", 8, 0, 0},
        {"IN/S", 9, 0, SORT_IN},
        {"OUT/S", 9, 0, SORT_OUT},
        {"P50 WAIT", 9, 0, 0},
        {"P99 WAIT", 9, 0, SORT_WAIT},
    };
    size_t column_count = sizeof columns / sizeof columns[0];
    /* Header: every title, the sorted one marked and highlighted. */
    int x = 0;
    move(y, 0);
    attron(A_BOLD | A_UNDERLINE);
    for (size_t c = 0; c < column_count && x < COLS; c++) {
        char title[32];
        int marked = columns[c].sort != 0 && columns[c].sort == view->sort;
        snprintf(title, sizeof title, "%s%s", columns[c].title, marked ? view->arrow : "");
        char cell[64];
        /* The arrow may be one UTF-8 character of three bytes: pad by characters, not bytes. */
        int extra = marked ? (int)strlen(view->arrow) - 1 : 0;
        snprintf(cell, sizeof cell, columns[c].left ? "%-*s" : "%*s", columns[c].width + extra,
                 title);
        if (marked)
            attron(A_REVERSE);
        mvaddnstr(y, x, cell, COLS - x);
        if (marked)
            attroff(A_REVERSE);
        x += columns[c].width;
        if (c + 1 < column_count && x < COLS)
            mvaddch(y, x++, ' ');
    }
    attroff(A_BOLD | A_UNDERLINE);
    y++;

    for (size_t i = 0; i < count && y < LINES - 1; i++, y++) {
        const top_row *row = &view->rows[i];
        const cli_actor *a = row->actor;
        char in[32], out[32], p50[32], p99[32], line[512];
        snprintf(line, sizeof line, "%-*s %-*.*s %6d %8llu %8llu %9s %9s %9s %9s", id_width, a->id,
                 name_width, name_width, row->label, a->thread, (unsigned long long)a->depth,
                 (unsigned long long)a->high_water, cli_format_count(row->in_rate, in, sizeof in),
                 cli_format_count(row->out_rate, out, sizeof out),
                 cli_format_seconds(row->p50, p50, sizeof p50),
                 cli_format_seconds(row->p99, p99, sizeof p99));
        put_line(y, a->depth > 0 ? A_BOLD : 0, line);
    }
    if (count == 0 && y < LINES - 1)
        put_line(y, A_DIM, "(no live actors)");
}

static void draw_footer(const top_view *view) {
    char keys[128], line[640];
    snprintf(keys, sizeof keys, " d depth  i in/s  o out/s  w p99 wait  n name  %sq quit",
             !top_is_node(view) ? ""
             : view->hide_peers ? "p show peers  "
                                : "p hide peers  ");
    int pad = COLS - (int)strlen(keys);
    snprintf(line, sizeof line, "%s%*s", keys, pad > 0 && pad < 500 ? pad : 0, "");
    put_line(LINES - 1, A_REVERSE, line);
}

static void top_draw(top_view *view) {
    erase();
    draw_header(view);
    int y = 3;
    int most = (LINES - 6) / 2; /* threads may take half the screen */
    y = draw_threads(view, y, most > 1 ? most : 1);
    y++;
    if (top_is_node(view) && !view->hide_peers && y < LINES - 1) {
        int peers = (LINES - 6) / 4; /* a quarter of the screen, and at least a title and a row */
        y = draw_peers(view, y, peers > 2 ? peers : 2);
        y++;
    }
    if (y < LINES - 1)
        draw_mailboxes(view, y);
    draw_footer(view);
    refresh();
}

/* ---------------------------------------------------------------------------------------------- */
/* the loop                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

/* Takes a new snapshot; on failure keeps the last one and remembers why. */
static void top_fetch(top_view *view) {
    char error[512];
    cli_snapshot *next = cli_snapshot_fetch(view->client, error, sizeof error);
    if (next == NULL) {
        snprintf(view->problem, sizeof view->problem, "%s", error);
        return;
    }
    view->problem[0] = '\0';
    cli_snapshot_destroy(&view->before);
    view->before = view->now;
    view->now = next;
    /* A runtime that restarted behind the endpoint: its counters began again. */
    if (view->before->uptime_seconds >= view->now->uptime_seconds)
        cli_snapshot_destroy(&view->before);
}

static int top_loop(top_view *view) {
    double next_fetch = cli_now() + view->interval;
    top_draw(view);
    while (!top_stop) {
        int key = getch(); /* waits up to 100 ms (timeout below) */
        if (key == 'q' || key == 'Q')
            break;
        switch (key) {
        case 'd':
        case 'i':
        case 'o':
        case 'w':
        case 'n':
            view->sort = (top_sort)key;
            top_draw(view);
            break;
        case 'p':
            view->hide_peers = !view->hide_peers;
            top_draw(view);
            break;
        case KEY_RESIZE:
        case 12: /* Ctrl-L */
            clear();
            top_draw(view);
            break;
        default:
            break;
        }
        if (cli_now() >= next_fetch && !top_stop) {
            top_fetch(view);
            next_fetch += view->interval;
            if (next_fetch < cli_now()) /* a slow answer: start the beat again */
                next_fetch = cli_now() + view->interval;
            top_draw(view);
        }
    }
    return CLI_EXIT_OK;
}

int cli_top_main(int argc, char **argv) {
    const char *endpoint = NULL, *value;
    int timeout_ms = CLI_DEFAULT_TIMEOUT_MS, interval_ms = 1000;
    for (int i = 1; i < argc; i++) {
        int matched;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(top_usage, stdout);
            return CLI_EXIT_OK;
        } else if ((matched = cli_option(argc, argv, &i, "--timeout", &value)) != 0) {
            if (matched < 0 || cli_parse_int("--timeout", value, 1, 3600000, &timeout_ms) != 0)
                return CLI_EXIT_USAGE;
        } else if ((matched = cli_option(argc, argv, &i, "--interval", &value)) != 0) {
            if (matched < 0 || cli_parse_int("--interval", value, 100, 3600000, &interval_ms) != 0)
                return CLI_EXIT_USAGE;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "spool top: unknown option '%s'\n\n%s", argv[i], top_usage);
            return CLI_EXIT_USAGE;
        } else if (endpoint == NULL) {
            endpoint = argv[i];
        } else {
            fprintf(stderr, "spool top: one endpoint only ('%s' and '%s')\n", endpoint, argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (endpoint == NULL) {
        fprintf(stderr, "spool top: which endpoint?\n\n%s", top_usage);
        return CLI_EXIT_USAGE;
    }

    top_view view = {0};
    view.sort = SORT_DEPTH;
    view.interval = interval_ms / 1000.0;
    view.client = cli_client_create(endpoint, timeout_ms);
    if (view.client == NULL) {
        fprintf(stderr, "spool: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    /* The first snapshot before the screen is taken: an endpoint that does not answer is an error
       message on a normal terminal, not a screen that waits. */
    char error[512];
    view.now = cli_snapshot_fetch(view.client, error, sizeof error);
    if (view.now == NULL) {
        fprintf(stderr, "spool: %s\n", error);
        cli_client_destroy(&view.client);
        return CLI_EXIT_FAILURE;
    }

    setlocale(LC_CTYPE, "");
    view.arrow = strcmp(nl_langinfo(CODESET), "UTF-8") == 0 ? "\xe2\x96\xbc" : "v";
    SCREEN *screen = newterm(NULL, stdout, stdin);
    if (screen == NULL) {
        fprintf(stderr, "spool top: cannot use this terminal (TERM=%s)\n",
                getenv("TERM") != NULL ? getenv("TERM") : "");
        cli_snapshot_destroy(&view.now);
        cli_client_destroy(&view.client);
        return CLI_EXIT_FAILURE;
    }
    /* No SA_RESTART: getch returns at once on Ctrl-C or SIGTERM, and the loop ends cleanly. */
    struct sigaction action = {0};
    action.sa_handler = top_on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);

    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    timeout(100);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(COLOR_LOW, COLOR_GREEN, -1);
        init_pair(COLOR_MIDDLE, COLOR_YELLOW, -1);
        init_pair(COLOR_HIGH, COLOR_RED, -1);
        init_pair(COLOR_TITLE, COLOR_CYAN, -1);
        init_pair(COLOR_PROBLEM, COLOR_WHITE, COLOR_RED);
        view.colors = 1;
    }
    int status = top_loop(&view);
    endwin();
    delscreen(screen);
    free(view.rows);
    cli_snapshot_destroy(&view.now);
    cli_snapshot_destroy(&view.before);
    cli_client_destroy(&view.client);
    return status;
}
