/*
 * plot.c - `spool stats --plot FILE.svg --seconds N`: samples an endpoint every interval and draws
 * two panels, mailbox depth over time and p99 wait over time, for the five actors whose mailboxes
 * ran deepest (the busiest by throughput when none queued), with axes, ticks and a legend.
 *
 * The SVG is written by hand: SVG is text, and no Debian C library makes SVG charts simply (cairo
 * draws but has no notion of a chart; plotting libraries are not C). The file is self-contained:
 * no script, no external style or font, so any browser or image viewer shows it.
 */
#include "cli.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PLOT_SHOWN 5 /* actors drawn */

typedef struct plot_series {
    char id[24];
    char label[64];
    int thread;
    uint64_t peak_depth;
    uint64_t first_enqueued, last_enqueued; /* throughput over the sampling, to break ties */
    double *depth;                          /* per sample; NAN: not alive then */
    double *p99;             /* per sample: p99 wait of the messages sampled since the last one */
    cli_histogram last_wait; /* the wait histogram at the previous sample */
    int seen_before;         /* last_wait is valid */
} plot_series;

typedef struct plot_data {
    size_t capacity; /* samples that fit */
    size_t sample_count;
    double *times; /* seconds since the first sample, by the runtime's uptime */
    size_t series_count, series_capacity;
    plot_series *series;
    unsigned sample_every;
} plot_data;

static volatile sig_atomic_t plot_stop; /* SIGINT/SIGTERM: stop sampling, draw what there is */

static void plot_on_signal(int signal_number) {
    (void)signal_number;
    plot_stop = 1;
}

static plot_series *series_for(plot_data *data, const cli_actor *actor) {
    for (size_t i = 0; i < data->series_count; i++)
        if (strcmp(data->series[i].id, actor->id) == 0)
            return &data->series[i];
    if (data->series_count == data->series_capacity) {
        size_t capacity = data->series_capacity * 2 + 8;
        plot_series *grown = realloc(data->series, capacity * sizeof *grown);
        if (grown == NULL)
            return NULL;
        data->series = grown;
        data->series_capacity = capacity;
    }
    plot_series *s = &data->series[data->series_count];
    memset(s, 0, sizeof *s);
    s->depth = malloc(data->capacity * sizeof *s->depth);
    s->p99 = malloc(data->capacity * sizeof *s->p99);
    if (s->depth == NULL || s->p99 == NULL) {
        free(s->depth);
        free(s->p99);
        return NULL;
    }
    for (size_t i = 0; i < data->capacity; i++)
        s->depth[i] = s->p99[i] = NAN;
    snprintf(s->id, sizeof s->id, "%s", actor->id);
    cli_actor_label(actor, s->label, sizeof s->label);
    s->first_enqueued = actor->enqueued;
    data->series_count++;
    return s;
}

/* Adds one snapshot as sample number data->sample_count. */
static int plot_add(plot_data *data, const cli_snapshot *snapshot, double time) {
    size_t k = data->sample_count;
    data->times[k] = time;
    for (size_t i = 0; i < snapshot->actor_count; i++) {
        const cli_actor *actor = &snapshot->actors[i];
        plot_series *s = series_for(data, actor);
        if (s == NULL)
            return -1;
        s->thread = actor->thread;
        s->depth[k] = (double)actor->depth;
        if (actor->depth > s->peak_depth)
            s->peak_depth = actor->depth;
        s->last_enqueued = actor->enqueued;
        /* The first sample has no interval before it; an actor new since the last sample was
           spawned within the interval, so all its waits belong to it. */
        if (k > 0) {
            double p99 = cli_histogram_quantile(snapshot, &actor->wait,
                                                s->seen_before ? &s->last_wait : NULL, 0.99);
            s->p99[k] = p99 >= 0 ? p99 : NAN;
        }
        s->last_wait = actor->wait;
        s->seen_before = 1;
    }
    data->sample_count++;
    return 0;
}

static int busiest_first(const void *a, const void *b) {
    const plot_series *x = a, *y = b;
    if (x->peak_depth != y->peak_depth)
        return x->peak_depth > y->peak_depth ? -1 : 1;
    uint64_t x_in = cli_delta(x->last_enqueued, x->first_enqueued);
    uint64_t y_in = cli_delta(y->last_enqueued, y->first_enqueued);
    if (x_in != y_in)
        return x_in > y_in ? -1 : 1;
    return strcmp(x->label, y->label);
}

/* ---------------------------------------------------------------------------------------------- */
/* drawing                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static const char *const colors[PLOT_SHOWN] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                               "#9467bd"};

enum { WIDTH = 960, LEFT = 90, RIGHT = 30, PANEL_HEIGHT = 230 };

typedef struct panel {
    double top;          /* pixel row of the plot area's top */
    double x_max;        /* seconds at the right edge */
    double x_step;       /* seconds between ticks */
    double y_min, y_max; /* value range (log10 of it when log) */
    int log;             /* y is log-scale */
    double (*values)(const plot_series *s, size_t k);
} panel;

static double depth_at(const plot_series *s, size_t k) { return s->depth[k]; }
static double p99_at(const plot_series *s, size_t k) { return s->p99[k]; }

static double panel_x(const panel *p, double seconds) {
    return LEFT + (WIDTH - LEFT - RIGHT) * (p->x_max > 0 ? seconds / p->x_max : 0);
}

static double panel_y(const panel *p, double value) {
    double v = p->log ? log10(value) : value;
    double share = (v - p->y_min) / (p->y_max - p->y_min);
    return p->top + PANEL_HEIGHT * (1 - share);
}

static void xml_text(FILE *out, const char *text) {
    for (; *text != '\0'; text++) {
        switch (*text) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&apos;", out);
            break;
        default:
            if ((unsigned char)*text >= 0x20 || *text == '\t')
                fputc(*text, out);
        }
    }
}

/* A step of 1, 2, 2.5 or 5 times a power of ten that cuts `range` into about `parts`. */
static double nice_step(double range, int parts) {
    double raw = range / parts;
    double magnitude = pow(10, floor(log10(raw)));
    double f = raw / magnitude;
    double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return nice * magnitude;
}

/* "1 ns" ... "10 s" for a power of ten (µ in UTF-8). */
static void decade_label(int exponent, char *buffer, size_t size) {
    static const char *const units[] = {"ns", "\xc2\xb5s", "ms", "s"};
    int unit = exponent < -6 ? 0 : exponent < -3 ? 1 : exponent < 0 ? 2 : 3;
    int shift = exponent - (unit * 3 - 9);
    snprintf(buffer, size, "%.0f %s", pow(10, shift), units[unit]);
}

static void draw_frame(FILE *out, const panel *p, const char *title, const char *y_label) {
    double right = WIDTH - RIGHT, bottom = p->top + PANEL_HEIGHT;
    fprintf(out, "<text x=\"%d\" y=\"%.0f\" class=\"panel\">%s</text>\n", LEFT, p->top - 10, title);
    /* x grid and ticks */
    for (double t = 0; t <= p->x_max + p->x_step * 1e-6; t += p->x_step) {
        double x = panel_x(p, t);
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n"
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%g</text>\n",
                x, p->top, x, bottom, x, bottom, x, bottom + 5, x, bottom + 18, t);
    }
    fprintf(out,
            "<text x=\"%.1f\" y=\"%.1f\" class=\"label\" text-anchor=\"middle\">time (s)</text>\n",
            (LEFT + right) / 2, bottom + 36);
    /* y grid and ticks */
    if (p->log) {
        for (int e = (int)p->y_min; e <= (int)p->y_max; e++) {
            char label[32];
            decade_label(e, label, sizeof label);
            double y = panel_y(p, pow(10, e));
            fprintf(out,
                    "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n"
                    "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"axis\"/>\n"
                    "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>\n",
                    LEFT, y, right, y, LEFT - 5, y, LEFT, y, LEFT - 8, y + 4, label);
        }
    } else {
        double step_y = p->y_max > 5 ? nice_step(p->y_max, 5) : 1;
        for (double v = 0; v <= p->y_max + step_y * 1e-6; v += step_y) {
            double y = panel_y(p, v);
            fprintf(out,
                    "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n"
                    "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"axis\"/>\n"
                    "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%g</text>\n",
                    LEFT, y, right, y, LEFT - 5, y, LEFT, y, LEFT - 8, y + 4, v);
        }
    }
    fprintf(out,
            "<text transform=\"translate(%d %.1f) rotate(-90)\" class=\"label\" "
            "text-anchor=\"middle\">%s</text>\n",
            LEFT - 62, p->top + PANEL_HEIGHT / 2.0, y_label);
    fprintf(out, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" class=\"box\"/>\n", LEFT,
            p->top, WIDTH - LEFT - RIGHT, PANEL_HEIGHT);
}

/* One actor's line, broken where it has no value; dots on the samples when they are few. */
static void draw_series(FILE *out, const panel *p, const plot_data *data, const plot_series *s,
                        const char *color) {
    fprintf(out, "<g stroke=\"%s\" fill=\"%s\"><title>", color, color);
    xml_text(out, s->label);
    fprintf(out, " (actor %s, thread %d)</title>\n<path fill=\"none\" stroke-width=\"2\" d=\"",
            s->id, s->thread);
    int drawing = 0;
    for (size_t k = 0; k < data->sample_count; k++) {
        double v = p->values(s, k);
        if (isnan(v)) {
            drawing = 0;
            continue;
        }
        fprintf(out, "%s%.1f %.1f ", drawing ? "L" : "M", panel_x(p, data->times[k]),
                panel_y(p, v));
        drawing = 1;
    }
    fprintf(out, "\"/>\n");
    for (size_t k = 0; k < data->sample_count; k++) {
        double v = p->values(s, k);
        int alone = (k == 0 || isnan(p->values(s, k - 1))) &&
                    (k + 1 == data->sample_count || isnan(p->values(s, k + 1)));
        if (!isnan(v) && (data->sample_count <= 80 || alone))
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>\n",
                    panel_x(p, data->times[k]), panel_y(p, v));
    }
    fprintf(out, "</g>\n");
}

static void draw_note(FILE *out, const panel *p, const char *note) {
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" class=\"note\" text-anchor=\"middle\">%s</text>\n",
            (LEFT + WIDTH - RIGHT) / 2.0, p->top + PANEL_HEIGHT / 2.0, note);
}

static int plot_write(const char *path, const char *endpoint, const plot_data *data,
                      int interval_ms) {
    size_t shown = data->series_count < PLOT_SHOWN ? data->series_count : PLOT_SHOWN;
    double x_max = data->sample_count > 1 ? data->times[data->sample_count - 1] : 0;
    if (x_max <= 0)
        x_max = interval_ms / 1000.0;
    double x_step = nice_step(x_max, 8);
    x_max = ceil(x_max / x_step - 1e-6) * x_step; /* the axis ends on a tick */
    /* Ranges over the actors shown. */
    double depth_max = 0, wait_min = INFINITY, wait_max = 0;
    for (size_t i = 0; i < shown; i++)
        for (size_t k = 0; k < data->sample_count; k++) {
            const plot_series *s = &data->series[i];
            if (!isnan(s->depth[k]) && s->depth[k] > depth_max)
                depth_max = s->depth[k];
            if (!isnan(s->p99[k]) && s->p99[k] > 0) {
                wait_min = fmin(wait_min, s->p99[k]);
                wait_max = fmax(wait_max, s->p99[k]);
            }
        }
    int have_waits = wait_max > 0;
    double depth_step = depth_max > 5 ? nice_step(depth_max, 5) : 1;
    panel depth = {90, x_max,   x_step, 0, fmax(1, ceil(depth_max / depth_step) * depth_step),
                   0,  depth_at};
    panel wait = {depth.top + PANEL_HEIGHT + 90, x_max, x_step, -6, -3, 1, p99_at};
    if (have_waits) {
        /* Whole decades, with room: a line on a decade is not drawn onto the frame. */
        wait.y_min = floor(log10(wait_min) - 1e-9);
        wait.y_max = ceil(log10(wait_max) + 1e-9);
        if (wait.y_max <= wait.y_min)
            wait.y_max = wait.y_min + 1;
    }
    double legend_top = wait.top + PANEL_HEIGHT + 70;
    int height = (int)legend_top + 22 * (int)(shown > 0 ? shown : 1) + 60;

    FILE *out = fopen(path, "w");
    if (out == NULL) {
        perror(path);
        return -1;
    }
    char when[64] = "";
    time_t now = time(NULL);
    struct tm local;
    if (localtime_r(&now, &local) != NULL)
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &local);

    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<!-- written by spool stats (plot): mailbox depth and p99 wait over time -->\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<style>\n"
            "  .title { font-size: 17px; font-weight: bold; }\n"
            "  .panel { font-size: 14px; font-weight: bold; }\n"
            "  .sub, .note { fill: #555; }\n"
            "  .label { font-size: 12px; fill: #333; }\n"
            "  .tick { font-size: 11px; fill: #333; }\n"
            "  .grid { stroke: #e4e4e4; stroke-width: 1; }\n"
            "  .axis { stroke: #333; stroke-width: 1; }\n"
            "  .box { fill: none; stroke: #333; stroke-width: 1; }\n"
            "</style>\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"26\" class=\"title\">spool: the busiest mailboxes of ",
            WIDTH, height, WIDTH, height, LEFT);
    xml_text(out, endpoint);
    fprintf(out,
            "</text>\n<text x=\"%d\" y=\"46\" class=\"sub\">%zu samples, one every %d ms, over "
            "%.1f s, from %s; the %zu actors whose mailboxes ran deepest</text>\n",
            LEFT, data->sample_count, interval_ms, x_max, when, shown);

    draw_frame(out, &depth, "Mailbox depth", "messages waiting");
    draw_frame(out, &wait, "p99 wait in the mailbox (per interval, log scale)", "p99 wait");
    for (size_t i = 0; i < shown; i++) {
        draw_series(out, &depth, data, &data->series[i], colors[i]);
        if (have_waits)
            draw_series(out, &wait, data, &data->series[i], colors[i]);
    }
    if (shown == 0)
        draw_note(out, &depth, "no live actors");
    if (!have_waits)
        draw_note(out, &wait, "no message was sampled in any interval");

    /* Legend */
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" class=\"panel\">Actors</text>\n", LEFT, legend_top - 8);
    double seconds = data->sample_count > 1 ? x_max : 0;
    for (size_t i = 0; i < shown; i++) {
        const plot_series *s = &data->series[i];
        double y = legend_top + 22 * (double)i + 12;
        char rate[32];
        cli_format_count(
            seconds > 0 ? (double)cli_delta(s->last_enqueued, s->first_enqueued) / seconds : -1,
            rate, sizeof rate);
        fprintf(out,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"3\"/>\n<text x=\"%d\" y=\"%.1f\" class=\"label\">",
                LEFT, y - 4, LEFT + 28, y - 4, colors[i], LEFT + 36, y);
        xml_text(out, s->label);
        fprintf(out, " - actor %s on thread %d: peak depth %llu, %s in/s</text>\n", s->id,
                s->thread, (unsigned long long)s->peak_depth, rate);
    }
    fprintf(out,
            "<text x=\"%d\" y=\"%d\" class=\"note\">p99 wait: the 99th percentile of the time a "
            "message waited in the mailbox, over the messages sampled (1 in %u) since the "
            "previous sample,</text>\n"
            "<text x=\"%d\" y=\"%d\" class=\"note\">read as histogram bucket bounds (1, 2.5, "
            "5 per decade); a gap means no message was sampled in that interval.</text>\n"
            "</svg>\n",
            LEFT, height - 34, data->sample_every, LEFT, height - 18);
    if (fclose(out) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

static void plot_free(plot_data *data) {
    for (size_t i = 0; i < data->series_count; i++) {
        free(data->series[i].depth);
        free(data->series[i].p99);
    }
    free(data->series);
    free(data->times);
}

int cli_plot_run(cli_client *client, const char *path, double seconds, int interval_ms) {
    const char *endpoint = cli_client_endpoint(client);
    double interval = interval_ms / 1000.0;
    plot_data data = {0};
    data.capacity = (size_t)(seconds / interval) + 2;
    data.times = calloc(data.capacity, sizeof *data.times);
    if (data.times == NULL) {
        fprintf(stderr, "spool: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    struct sigaction action = {0};
    action.sa_handler = plot_on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    int status = CLI_EXIT_OK;
    char error[512] = "";
    double started = cli_now(), first_uptime = 0;
    for (size_t k = 0; k < data.capacity && !plot_stop; k++) {
        if (k > 0) {
            double due = started + (double)k * interval;
            if (due - started > seconds + interval * 0.5)
                break;
            cli_sleep(due - cli_now(), &plot_stop);
            if (plot_stop)
                break;
        }
        cli_snapshot *snapshot = cli_snapshot_fetch(client, error, sizeof error);
        if (snapshot == NULL) {
            if (!plot_stop) /* else a signal cut the request short: that is a stop, not a fault */
                status = CLI_EXIT_FAILURE;
            break;
        }
        if (k == 0)
            first_uptime = snapshot->uptime_seconds;
        data.sample_every = snapshot->sample_every;
        int added = plot_add(&data, snapshot, snapshot->uptime_seconds - first_uptime);
        cli_snapshot_destroy(&snapshot);
        if (added != 0) {
            snprintf(error, sizeof error, "out of memory");
            status = CLI_EXIT_FAILURE;
            break;
        }
    }
    if (data.sample_count == 0) {
        fprintf(stderr, "spool: %s\n", error);
        plot_free(&data);
        return CLI_EXIT_FAILURE;
    }
    if (status != CLI_EXIT_OK)
        fprintf(stderr, "spool: %s after %zu samples; plotting those\n", error, data.sample_count);
    else if (plot_stop)
        fprintf(stderr, "spool: stopped after %zu samples; plotting those\n", data.sample_count);
    qsort(data.series, data.series_count, sizeof *data.series, busiest_first);
    if (plot_write(path, endpoint, &data, interval_ms) != 0)
        status = CLI_EXIT_FAILURE;
    else
        fprintf(stderr, "spool: wrote %s: %zu samples of %zu actors, the %d busiest drawn\n", path,
                data.sample_count, data.series_count,
                data.series_count < PLOT_SHOWN ? (int)data.series_count : PLOT_SHOWN);
    plot_free(&data);
    return status;
}
