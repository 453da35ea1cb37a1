#define _GNU_SOURCE /* qsort_r */
#include "top/screen.h"

#include <curses.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

#include "mesh/err.h"
#include "mesh/hist.h"

#define COL_MAX_WIDTH 60    /* as the plain tables */
#define COL_MIN_WIDTH 8     /* a shrunk column keeps this much */
#define COL_GAP 2

enum { PAIR_FAIL = 1, PAIR_BAR, PAIR_HEAD };

struct ui_cell {
    uint32_t off;       /* into the row's text */
    uint32_t width;     /* display columns */
    double num;
    int has_num;
};

struct ui_row {
    unsigned flags;
    uint64_t seq;       /* insertion order: ties keep the view's order */
    char *text;
    struct ui_cell cells[];
};

struct mesh_ui {
    struct mesh_ui_opts opts;
    struct mesh_loop *loop;
    SCREEN *term;
    int colour, marker;         /* colours on; "!" margin for failing rows */
    int stdin_watched;
    /* rows: TABLE uses rows[0..nrows); LOG is a ring of MESH_UI_MAX_ROWS from head */
    struct ui_row **rows;
    size_t nrows, head;
    uint64_t seq, cut, cut_update;
    size_t maxw[MESH_UI_MAX_COLS];      /* widest cell per column (LOG: so far) */
    /* view state */
    int sort, reverse, paused;
    size_t top;                 /* TABLE: first row shown */
    size_t from_tail;           /* LOG: rows hidden below the last one shown */
    int dirty, running, status;
    char *why;
    uint64_t dirty_since_us, last_draw_us;
    /* MESH_UI_STATS */
    const char *stats_path;
    struct mesh_hist draw_hist, stale_hist;
    uint64_t draws, events;
};

static struct mesh_ui *active; /* the screen to restore at exit() */

static void restore_at_exit(void)
{
    if (active != NULL && active->term != NULL && !isendwin())
        endwin();
}

/* --- text: copy with bad bytes and controls replaced, measure ---------------------- */

/* Appends |s| to |out| (which has room for 4 * strlen + 1), replacing what a
 * terminal would act on or not print; returns its display width. */
static size_t clean_copy(char *out, size_t *at, const char *s)
{
    size_t width = 0, len = strlen(s);
    mbstate_t st;
    memset(&st, 0, sizeof(st));
    while (*s) {
        wchar_t wc;
        size_t n = mbrtowc(&wc, s, len, &st);
        int w;
        if (n == (size_t)-1 || n == (size_t)-2 || n == 0 || (w = wcwidth(wc)) < 0) {
            memset(&st, 0, sizeof(st));
            out[(*at)++] = '?';
            width++;
            n = (n == (size_t)-1 || n == (size_t)-2 || n == 0) ? 1 : n;
        } else {
            memcpy(out + *at, s, n);
            *at += n;
            width += (size_t)w;
        }
        s += n;
        len -= n;
    }
    out[(*at)++] = '\0';
    return width;
}

/* Bytes of |s| that fit in |cols| display columns; *|used| their width. */
static size_t fit(const char *s, size_t cols, size_t *used)
{
    mbstate_t st;
    size_t off = 0, len = strlen(s);
    *used = 0;
    memset(&st, 0, sizeof(st));
    while (off < len) {
        wchar_t wc;
        size_t n = mbrtowc(&wc, s + off, len - off, &st);
        if (n == (size_t)-1 || n == (size_t)-2 || n == 0)
            n = 1, wc = L'?'; /* clean_copy left none; be safe */
        int w = wcwidth(wc);
        size_t cw = w < 0 ? 1 : (size_t)w;
        if (*used + cw > cols)
            break;
        *used += cw;
        off += n;
    }
    return off;
}

/* Draws |s| (display width |sw|) in |w| columns at the cursor, cut with "…". */
static void put_cell(const char *s, size_t sw, size_t w, int right)
{
    size_t used;
    if (sw <= w) {
        if (right)
            for (size_t i = sw; i < w; i++)
                addch(' ');
        addstr(s);
        if (!right)
            for (size_t i = sw; i < w; i++)
                addch(' ');
        return;
    }
    if (w == 0)
        return;
    size_t n = fit(s, w - 1, &used);
    addnstr(s, (int)n);
    addstr("…");
    for (size_t i = used + 1; i < w; i++)
        addch(' ');
}

/* --- rows ------------------------------------------------------------------------------ */

static struct ui_row *row_new(struct mesh_ui *ui, const struct mesh_ui_cell *cells,
                              unsigned flags)
{
    size_t ncols = ui->opts.ncols, text = 0;
    for (size_t c = 0; c < ncols; c++)
        text += 4 * strlen(cells[c].text ? cells[c].text : "-") + 1;
    struct ui_row *r = malloc(sizeof(*r) + ncols * sizeof(r->cells[0]) + text);
    if (r == NULL)
        return NULL;
    r->flags = flags;
    r->seq = ui->seq++;
    r->text = (char *)&r->cells[ncols];
    size_t at = 0;
    for (size_t c = 0; c < ncols; c++) {
        r->cells[c].off = (uint32_t)at;
        r->cells[c].width = (uint32_t)clean_copy(r->text, &at, cells[c].text ? cells[c].text : "-");
        r->cells[c].num = cells[c].num;
        r->cells[c].has_num = cells[c].has_num;
        if (r->cells[c].width > ui->maxw[c])
            ui->maxw[c] = r->cells[c].width;
    }
    return r;
}

static struct ui_row *row_at(const struct mesh_ui *ui, size_t i)
{
    if (ui->opts.mode == MESH_UI_LOG)
        return ui->rows[(ui->head + i) % MESH_UI_MAX_ROWS];
    return ui->rows[i];
}

static void rows_clear(struct mesh_ui *ui)
{
    for (size_t i = 0; i < ui->nrows; i++)
        free(row_at(ui, i));
    ui->nrows = ui->head = 0;
    memset(ui->maxw, 0, sizeof(ui->maxw));
}

static void mark_dirty(struct mesh_ui *ui)
{
    if (!ui->dirty)
        ui->dirty_since_us = mesh_loop_now_us();
    ui->dirty = 1;
}

void mesh_ui_begin(struct mesh_ui *ui)
{
    rows_clear(ui);
    ui->cut_update = 0;
}

void mesh_ui_add(struct mesh_ui *ui, const struct mesh_ui_cell *cells, unsigned flags)
{
    if (ui->opts.mode == MESH_UI_TABLE && ui->nrows == MESH_UI_MAX_ROWS) {
        ui->cut_update++;
        return;
    }
    struct ui_row *r = row_new(ui, cells, flags);
    if (r == NULL) {
        ui->cut_update++;
        ui->cut++;
        return;
    }
    if (ui->opts.mode == MESH_UI_TABLE) {
        ui->rows[ui->nrows++] = r;
        return;
    }
    if (ui->nrows == MESH_UI_MAX_ROWS) {
        free(ui->rows[ui->head]);
        ui->rows[ui->head] = r;
        ui->head = (ui->head + 1) % MESH_UI_MAX_ROWS;
        ui->cut++;
    } else {
        ui->rows[(ui->head + ui->nrows++) % MESH_UI_MAX_ROWS] = r;
    }
    mark_dirty(ui);
}

static int cmp_rows(const void *a, const void *b, void *arg)
{
    const struct mesh_ui *ui = arg;
    const struct ui_row *x = *(const struct ui_row *const *)a, *y = *(const struct ui_row *const *)b;
    int c = ui->sort, cmp = 0;
    if (c >= 0) {
        unsigned flags = ui->opts.cols[c].flags;
        const struct ui_cell *cx = &x->cells[c], *cy = &y->cells[c];
        if (flags & MESH_UI_NUM) {
            if (cx->has_num != cy->has_num)
                return cx->has_num ? -1 : 1; /* absent values last, either way */
            if (cx->has_num)
                cmp = (cx->num > cy->num) - (cx->num < cy->num);
        } else {
            cmp = strcmp(x->text + cx->off, y->text + cy->off);
        }
        if ((flags & MESH_UI_DESC) != 0)
            cmp = -cmp;
        if (ui->reverse)
            cmp = -cmp;
    }
    return cmp ? cmp : (x->seq > y->seq) - (x->seq < y->seq);
}

static void sort_rows(struct mesh_ui *ui)
{
    if (ui->opts.mode == MESH_UI_TABLE && ui->nrows > 1)
        qsort_r(ui->rows, ui->nrows, sizeof(ui->rows[0]), cmp_rows, ui);
}

void mesh_ui_commit(struct mesh_ui *ui)
{
    ui->cut = ui->cut_update;
    sort_rows(ui);
    mark_dirty(ui);
}

int mesh_ui_paused(const struct mesh_ui *ui)
{
    return ui->paused;
}

size_t mesh_ui_rows(const struct mesh_ui *ui)
{
    return ui->nrows;
}

uint64_t mesh_ui_cut(const struct mesh_ui *ui)
{
    return ui->cut;
}

void mesh_ui_touch(struct mesh_ui *ui)
{
    mark_dirty(ui);
}

void mesh_ui_count_events(struct mesh_ui *ui, uint64_t n)
{
    ui->events += n;
}

struct mesh_loop *mesh_ui_loop(struct mesh_ui *ui)
{
    return ui->loop;
}

/* --- drawing --------------------------------------------------------------------------- */

static size_t body_lines(void)
{
    return LINES > 3 ? (size_t)LINES - 3 : 0; /* title, header, footer */
}

/* Column widths that fit |cols| screen columns: text columns marked SHRINK
 * give way first, widest first. */
static void layout(const struct mesh_ui *ui, size_t avail, size_t *w)
{
    /* a sortable column's header has room for the sort arrow */
    size_t total = 0, n = ui->opts.ncols;
    for (size_t c = 0; c < n; c++) {
        w[c] = strlen(ui->opts.cols[c].name) + (ui->opts.cols[c].key ? 1 : 0);
        if (ui->maxw[c] > w[c])
            w[c] = ui->maxw[c];
        if (w[c] > COL_MAX_WIDTH)
            w[c] = COL_MAX_WIDTH;
        total += w[c] + (c + 1 < n ? COL_GAP : 0);
    }
    /* the columns that say most (paths) give way last */
    for (unsigned keep = 0; keep <= MESH_UI_KEEP && total > avail; keep += MESH_UI_KEEP) {
        while (total > avail) {
            size_t widest = n;
            for (size_t c = 0; c < n; c++)
                if ((ui->opts.cols[c].flags & (MESH_UI_SHRINK | MESH_UI_KEEP)) == (MESH_UI_SHRINK | keep) &&
                    w[c] > COL_MIN_WIDTH && (widest == n || w[c] > w[widest]))
                    widest = c;
            if (widest == n)
                break; /* the rest is cut at the screen's edge */
            w[widest]--;
            total--;
        }
    }
}

static void draw(struct mesh_ui *ui)
{
    uint64_t t0 = mesh_loop_now_us();
    size_t ncols = ui->opts.ncols, body = body_lines(), cols = COLS > 0 ? (size_t)COLS : 0;
    size_t gutter = ui->marker ? 2 : 0, w[MESH_UI_MAX_COLS], first, shown;
    char line[1024], status[512];
    erase();
    /* which rows: TABLE from |top|, LOG ending |from_tail| rows above the newest */
    if (ui->opts.mode == MESH_UI_TABLE) {
        if (ui->top + body > ui->nrows)
            ui->top = ui->nrows > body ? ui->nrows - body : 0;
        first = ui->top;
    } else {
        size_t max_tail = ui->nrows > body ? ui->nrows - body : 0;
        if (ui->from_tail > max_tail)
            ui->from_tail = max_tail;
        first = ui->nrows > body + ui->from_tail ? ui->nrows - body - ui->from_tail : 0;
    }
    shown = ui->nrows - first < body ? ui->nrows - first : body;

    /* top line: title, then the view's status and where we are */
    status[0] = '\0';
    if (ui->opts.status)
        ui->opts.status(ui, status, sizeof(status), ui->opts.ctx);
    snprintf(line, sizeof(line), "%s%s%s  rows %zu-%zu of %zu", ui->paused ? "PAUSED  " : "",
             status, status[0] ? "  ·" : "", shown ? first + 1 : 0, first + shown, ui->nrows);
    attron(A_REVERSE);
    move(0, 0);
    for (size_t i = 0; i < cols; i++)
        addch(' ');
    move(0, 0);
    size_t tw = strlen(ui->opts.title) > cols ? cols : strlen(ui->opts.title);
    addnstr(ui->opts.title, (int)tw);
    size_t lw = 0, lb;
    if (cols > tw + 2) {
        lb = fit(line, cols - tw - 2, &lw);
        move(0, (int)(cols - lw));
        addnstr(line, (int)lb);
    }
    attroff(A_REVERSE);

    /* header and rows */
    layout(ui, cols > gutter ? cols - gutter : 0, w);
    move(1, 0);
    attron(A_BOLD | (ui->colour ? COLOR_PAIR(PAIR_HEAD) : 0));
    size_t x = gutter;
    for (size_t i = 0; i < gutter; i++)
        addch(' ');
    for (size_t c = 0; c < ncols && x < cols; c++) {
        const struct mesh_ui_col *col = &ui->opts.cols[c];
        char name[128];
        int desc = (col->flags & MESH_UI_DESC) != 0;
        snprintf(name, sizeof(name), "%s%s", col->name,
                 (int)c != ui->sort ? "" : (desc != ui->reverse ? "▼" : "▲"));
        size_t cw = x + w[c] > cols ? cols - x : w[c];
        put_cell(name, strlen(col->name) + ((int)c == ui->sort), cw, (col->flags & MESH_UI_RIGHT) != 0);
        x += cw;
        for (size_t g = 0; g < COL_GAP && x < cols; g++, x++)
            addch(' ');
    }
    attroff(A_BOLD | (ui->colour ? COLOR_PAIR(PAIR_HEAD) : 0));
    for (size_t i = 0; i < shown; i++) {
        const struct ui_row *r = row_at(ui, first + i);
        int fail = (r->flags & MESH_UI_FAIL) != 0;
        attr_t attr = !fail ? 0 : ui->colour ? COLOR_PAIR(PAIR_FAIL) : A_BOLD;
        move((int)(2 + i), 0);
        attron(attr);
        if (gutter)
            addstr(fail ? "! " : "  ");
        x = gutter;
        for (size_t c = 0; c < ncols && x < cols; c++) {
            size_t cw = x + w[c] > cols ? cols - x : w[c];
            put_cell(r->text + r->cells[c].off, r->cells[c].width, cw,
                     (ui->opts.cols[c].flags & MESH_UI_RIGHT) != 0);
            x += cw;
            for (size_t g = 0; g < COL_GAP && x < cols; g++, x++)
                addch(' ');
        }
        attroff(attr);
    }

    /* footer: the keys */
    size_t at = 0;
    at += (size_t)snprintf(line + at, sizeof(line) - at, "q quit  space %s  ↑↓ PgUp PgDn j k g G scroll",
                           ui->paused ? "resume" : "pause");
    if (ui->opts.mode == MESH_UI_TABLE) {
        at += (size_t)snprintf(line + at, sizeof(line) - at, "  sort (again: reverse):");
        for (size_t c = 0; c < ncols && at < sizeof(line) - 64; c++)
            if (ui->opts.cols[c].key)
                at += (size_t)snprintf(line + at, sizeof(line) - at, " %c %s", ui->opts.cols[c].key,
                                       ui->opts.cols[c].name);
        if (at < sizeof(line) - 16)
            snprintf(line + at, sizeof(line) - at, "  < > column");
    }
    if (LINES > 1 && cols > 1) {
        move(LINES - 1, 0);
        attron(A_REVERSE);
        lb = fit(line, cols - 1, &lw); /* never the last cell: it would scroll */
        addnstr(line, (int)lb);
        for (size_t i = lw; i + 1 < cols; i++)
            addch(' ');
        attroff(A_REVERSE);
    }
    refresh();

    uint64_t t1 = mesh_loop_now_us();
    if (ui->stats_path != NULL) {
        mesh_hist_add(&ui->draw_hist, t1 - t0);
        if (ui->dirty)
            mesh_hist_add(&ui->stale_hist, t1 - ui->dirty_since_us);
    }
    ui->draws++;
    ui->dirty = 0;
    ui->last_draw_us = t1;
}

/* --- keys, timers, signals ------------------------------------------------------------- */

static void scroll_by(struct mesh_ui *ui, long delta)
{
    if (ui->opts.mode == MESH_UI_TABLE) {
        if (delta < 0)
            ui->top = (size_t)-delta > ui->top ? 0 : ui->top - (size_t)-delta;
        else
            ui->top += (size_t)delta; /* clamped when drawn */
        return;
    }
    /* a log moves under the reader: scrolling back pauses it */
    if (delta < 0) {
        ui->paused = 1;
        ui->from_tail += (size_t)-delta;
    } else {
        ui->from_tail = (size_t)delta > ui->from_tail ? 0 : ui->from_tail - (size_t)delta;
    }
}

static void set_sort(struct mesh_ui *ui, int col)
{
    if (col == ui->sort)
        ui->reverse = !ui->reverse;
    else
        ui->sort = col, ui->reverse = 0;
    sort_rows(ui);
    ui->top = 0;
}

static void next_sort(struct mesh_ui *ui, int dir)
{
    int n = (int)ui->opts.ncols;
    for (int i = 1; i <= n; i++) {
        int c = ((ui->sort < 0 ? 0 : ui->sort) + dir * i + n * 2) % n;
        if (ui->opts.cols[c].key) {
            ui->sort = c, ui->reverse = 0;
            sort_rows(ui);
            ui->top = 0;
            return;
        }
    }
}

static void resize(struct mesh_ui *ui)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
        resize_term(ws.ws_row, ws.ws_col);
    clearok(curscr, TRUE);
}

static void tick(struct mesh_ui *ui)
{
    if (ui->opts.on_tick != NULL && !ui->paused)
        ui->opts.on_tick(ui, ui->opts.ctx);
}

/* 1 when |ch| was a key the screen knows */
static int handle_key(struct mesh_ui *ui, int ch)
{
    long page = (long)body_lines();
    switch (ch) {
    case 'q': case 'Q': mesh_ui_stop(ui, MESH_EXIT_OK, NULL); return 1;
    case ' ':
        ui->paused = !ui->paused;
        if (!ui->paused) {
            ui->from_tail = 0;
            tick(ui); /* fresh rows now, not at the next tick */
        }
        return 1;
    case KEY_UP: case 'k': scroll_by(ui, -1); return 1;
    case KEY_DOWN: case 'j': scroll_by(ui, 1); return 1;
    case KEY_PPAGE: scroll_by(ui, -(page > 1 ? page - 1 : 1)); return 1;
    case KEY_NPAGE: scroll_by(ui, page > 1 ? page - 1 : 1); return 1;
    case KEY_HOME: case 'g': scroll_by(ui, -(long)MESH_UI_MAX_ROWS); return 1;
    case KEY_END: case 'G': scroll_by(ui, (long)MESH_UI_MAX_ROWS); return 1;
    case KEY_RESIZE: resize(ui); return 1;
    case '<': case KEY_LEFT: if (ui->opts.mode == MESH_UI_TABLE) next_sort(ui, -1); return 1;
    case '>': case KEY_RIGHT: if (ui->opts.mode == MESH_UI_TABLE) next_sort(ui, 1); return 1;
    case 12: clearok(curscr, TRUE); return 1; /* Ctrl-L */
    default: break;
    }
    if (ui->opts.mode == MESH_UI_TABLE)
        for (size_t c = 0; c < ui->opts.ncols; c++)
            if (ui->opts.cols[c].key && ui->opts.cols[c].key == ch) {
                set_sort(ui, (int)c);
                return 1;
            }
    return 0;
}

static void on_input(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct mesh_ui *ui = ctx;
    static unsigned empty; /* readable yet nothing to read: stdin is at its end */
    int ch, any = 0, got = 0;
    while ((ch = getch()) != ERR) {
        got = 1;
        any |= handle_key(ui, ch);
    }
    if (!got && ++empty >= 100) {
        mesh_loop_del_fd(loop, fd); /* keys cannot come any more; signals still do */
        ui->stdin_watched = 0;
    } else if (got) {
        empty = 0;
    }
    if (any && ui->running)
        draw(ui); /* keys are answered at once */
}

static int on_tick_timer(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct mesh_ui *ui = ctx;
    tick(ui);
    return (int)ui->opts.tick_ms;
}

static int on_draw_timer(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct mesh_ui *ui = ctx;
    if (ui->dirty && ui->running)
        draw(ui);
    return MESH_UI_DRAW_MS;
}

static void on_signal(struct mesh_loop *loop, int signo, void *ctx)
{
    struct mesh_ui *ui = ctx;
    if (signo == SIGWINCH) {
        resize(ui);
        draw(ui);
        return;
    }
    mesh_ui_stop(ui, MESH_EXIT_OK, NULL); /* Ctrl-C quits, as q does */
}

/* --- lifetime -------------------------------------------------------------------------- */

struct mesh_ui *mesh_ui_open(const struct mesh_ui_opts *opts, char *err, size_t errlen)
{
    static int registered;
    if (opts->ncols == 0 || opts->ncols > MESH_UI_MAX_COLS || active != NULL) {
        snprintf(err, errlen, "bad screen layout");
        return NULL;
    }
    struct mesh_ui *ui = calloc(1, sizeof(*ui));
    if (ui == NULL || (ui->rows = calloc(MESH_UI_MAX_ROWS, sizeof(ui->rows[0]))) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(ui);
        return NULL;
    }
    ui->opts = *opts;
    ui->sort = opts->sort < (int)opts->ncols ? opts->sort : -1;
    ui->status = MESH_EXIT_OK;
    const char *stats = getenv("MESH_UI_STATS");
    ui->stats_path = stats && *stats ? stats : NULL;
    mesh_hist_init(&ui->draw_hist);
    mesh_hist_init(&ui->stale_hist);
    if ((ui->loop = mesh_loop_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    fflush(stdout); /* nothing of ours may land in the middle of the screen */
    const char *term = getenv("TERM");
    ui->term = newterm(NULL, stdout, stdin);
    if (ui->term == NULL) {
        snprintf(err, errlen, "TERM=%s: not a terminal ncurses knows", term ? term : "");
        goto fail;
    }
    active = ui;
    if (!registered) {
        atexit(restore_at_exit);
        registered = 1;
    }
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    const char *no_colour = getenv("NO_COLOR"); /* no-color.org: set and not empty */
    if (no_colour == NULL || *no_colour == '\0') {
        if (has_colors() && start_color() == OK) {
            use_default_colors();
            init_pair(PAIR_FAIL, COLOR_RED, -1);
            init_pair(PAIR_HEAD, COLOR_CYAN, -1);
            ui->colour = 1;
        }
    }
    ui->marker = !ui->colour;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        mesh_loop_on_signal(ui->loop, sigs[i], on_signal, ui);
    /* a stdin that is not a terminal (a file, /dev/null) gives no keys; epoll
     * refuses regular files, which is fine: q is then Ctrl-C */
    if (isatty(STDIN_FILENO) && mesh_loop_add_fd(ui->loop, STDIN_FILENO, MESH_READ, on_input, ui) == 0)
        ui->stdin_watched = 1;
    return ui;
fail:
    if (ui->loop)
        mesh_loop_free(ui->loop);
    free(ui->rows);
    free(ui);
    return NULL;
}

int mesh_ui_run(struct mesh_ui *ui)
{
    ui->running = 1;
    if (ui->opts.tick_ms > 0)
        mesh_loop_add_timer(ui->loop, ui->opts.tick_ms, on_tick_timer, ui);
    mesh_loop_add_timer(ui->loop, MESH_UI_DRAW_MS, on_draw_timer, ui);
    tick(ui);
    if (ui->running) {
        mark_dirty(ui);
        draw(ui);
        mesh_loop_run(ui->loop);
    }
    ui->running = 0;
    return ui->status;
}

void mesh_ui_stop(struct mesh_ui *ui, int status, const char *why)
{
    if (!ui->running)
        return; /* the first reason wins */
    ui->running = 0;
    ui->status = status;
    if (why != NULL)
        ui->why = strdup(why);
    mesh_loop_stop(ui->loop);
}

static void write_stats(const struct mesh_ui *ui)
{
    FILE *f = fopen(ui->stats_path, "w");
    if (f == NULL)
        return;
    fprintf(f,
            "draws=%llu draw_p50_us=%lld draw_p99_us=%lld draw_max_us=%llu "
            "stale_p50_us=%lld stale_p99_us=%lld stale_max_us=%llu events=%llu rows=%zu cut=%llu\n",
            (unsigned long long)ui->draws, (long long)mesh_hist_quantile(&ui->draw_hist, 0.5),
            (long long)mesh_hist_quantile(&ui->draw_hist, 0.99),
            (unsigned long long)ui->draw_hist.max,
            (long long)mesh_hist_quantile(&ui->stale_hist, 0.5),
            (long long)mesh_hist_quantile(&ui->stale_hist, 0.99),
            (unsigned long long)ui->stale_hist.max, (unsigned long long)ui->events, ui->nrows,
            (unsigned long long)ui->cut);
    fclose(f);
}

void mesh_ui_close(struct mesh_ui *ui)
{
    if (ui == NULL)
        return;
    if (ui->term != NULL) {
        endwin();
        delscreen(ui->term);
        ui->term = NULL;
    }
    active = NULL;
    fflush(stdout);
    if (ui->why != NULL)
        fprintf(stderr, "%s\n", ui->why);
    if (ui->stats_path != NULL)
        write_stats(ui);
    rows_clear(ui);
    if (ui->stdin_watched)
        mesh_loop_del_fd(ui->loop, STDIN_FILENO);
    mesh_loop_free(ui->loop);
    free(ui->rows);
    free(ui->why);
    free(ui);
}
