/* cli_quantize.c - `rbee quantize IN.gguf OUT.gguf TYPE [-t N]`.
 *
 * Ctrl-C (or SIGTERM, SIGHUP) must not leave a half-written temp file: the
 * signals are blocked while quantizing and polled between rows (no handler,
 * no global flag), the run stops and removes its temp file, then the signal
 * is let through so the exit status says what happened. A signal the
 * process was started with ignored (SIGHUP under nohup, SIGINT in a
 * shell's background job) is left out: blocking it would make it pending,
 * and the run would stop on what its user asked to be ignored. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "quantize.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rbee quantize IN.gguf OUT.gguf TYPE [-t N]\n\n"
            "Convert a GGUF model's weights to TYPE, one of:\n"
            "  f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q4_k_m q5_k_m q6_k\n"
            "Metadata is copied; norms and other 1-D tensors stay as they are; the _k_m\n"
            "types give output, some attn_v and ffn_down layers more bits (llama.cpp's\n"
            "mix). Tensors whose rows do not divide into blocks get a wider type.\n"
            "OUT is written to a temporary file beside it and renamed when complete\n"
            "(a symbolic link is followed; a device such as /dev/null is written to).\n\n"
            "  -t N   threads (default: all online CPUs)\n");
}

struct ui {
    int tty;      /* draw a progress bar on stderr */
    int drawn;    /* a bar is on screen (clear it before other output) */
    const char *signal; /* the signal that stopped the run, or NULL */
};

/* The signals that stop a run; blocked while it runs, so they wait for us. */
static const struct { int sig; const char *name; } stop_signals[] = {
    { SIGINT, "SIGINT" }, { SIGTERM, "SIGTERM" }, { SIGHUP, "SIGHUP" },
};
#define N_STOP_SIGNALS (sizeof stop_signals / sizeof stop_signals[0])

static int on_poll(void *user) {
    struct ui *ui = user;
    sigset_t pending;
    if (sigpending(&pending) != 0) return 0;
    for (size_t i = 0; i < N_STOP_SIGNALS; i++)
        if (sigismember(&pending, stop_signals[i].sig) == 1) {
            ui->signal = stop_signals[i].name;
            return 1;
        }
    return 0;
}

static void on_note(void *user, const char *line) {
    struct ui *ui = user;
    if (ui->drawn) {
        fprintf(stderr, "\r\033[K");
        ui->drawn = 0;
    }
    fprintf(stderr, "rbee: note: %s\n", line);
}

static void on_progress(void *user, uint64_t done, uint64_t total, const char *tensor) {
    struct ui *ui = user;
    if (!ui->tty) return;
    const int width = 30;
    int filled = total ? (int)(done * width / total) : width;
    fprintf(stderr, "\r\033[K[");
    for (int i = 0; i < width; i++) fputc(i < filled ? '#' : ' ', stderr);
    fprintf(stderr, "] %3d%% %.40s", total ? (int)(done * 100 / total) : 100, tensor);
    fflush(stderr);
    ui->drawn = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double file_mib(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size / (1024.0 * 1024.0) : 0.0;
}

int cli_quantize(int argc, char **argv) {
    const char *pos[3];
    int n_pos = 0;
    long n_threads = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) {
            char *end;
            if (i + 1 >= argc) {
                fprintf(stderr, "rbee: error: %s: needs a number\n", argv[i]);
                return 1;
            }
            n_threads = strtol(argv[++i], &end, 10);
            if (*end || n_threads < 1 || n_threads > 64) {
                fprintf(stderr, "rbee: error: -t %s: expected a thread count from 1 to 64\n", argv[i]);
                return 1;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "rbee: error: quantize: unknown option '%s' (see 'rbee quantize --help')\n", argv[i]);
            return 1;
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            fprintf(stderr, "rbee: error: quantize: too many arguments (see 'rbee quantize --help')\n");
            return 1;
        }
    }
    if (n_pos != 3) {
        usage(stderr);
        fprintf(stderr, "\nrbee: error: quantize: expected IN.gguf OUT.gguf TYPE, got %d argument%s\n", n_pos,
                n_pos == 1 ? "" : "s");
        return 1;
    }
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 64) n_threads = 64;

    uint32_t ftype;
    if (rb_ftype_from_name(pos[2], &ftype) != 0) {
        fprintf(stderr, "rbee: error: quantize: unknown type '%s' (one of f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q4_k_m q5_k_m q6_k)\n", pos[2]);
        return 1;
    }
    /* an ignored signal left unblocked is discarded, never pending: on_poll cannot see it */
    sigset_t stops, before;
    sigemptyset(&stops);
    for (size_t i = 0; i < N_STOP_SIGNALS; i++) {
        struct sigaction now;
        if (sigaction(stop_signals[i].sig, NULL, &now) == 0 && now.sa_handler != SIG_IGN)
            sigaddset(&stops, stop_signals[i].sig);
    }
    pthread_sigmask(SIG_BLOCK, &stops, &before); /* before any thread starts: all inherit it */
    struct ui ui = { .tty = isatty(2), .drawn = 0 };
    struct rb_quantize_opts opts = {
        .ftype = ftype, .n_threads = (int)n_threads,
        .note = on_note, .progress = on_progress, .cancelled = on_poll, .user = &ui,
    };
    char err[RB_ERR_MAX];
    double t0 = now_s();
    int rc = rb_quantize_file(pos[0], pos[1], &opts, err);
    if (ui.drawn) fprintf(stderr, "\r\033[K");
    if (rc != 0 && ui.signal) {
        fprintf(stderr, "rbee: error: quantize: interrupted by %s; %s not written\n", ui.signal, pos[1]);
        pthread_sigmask(SIG_SETMASK, &before, NULL); /* the pending signal ends the process now */
        return 1; /* if it was ignored */
    }
    pthread_sigmask(SIG_SETMASK, &before, NULL); /* a signal that came after the last poll acts now */
    if (rc != 0) {
        fprintf(stderr, "rbee: error: quantize: %s\n", err);
        return 1;
    }
    struct stat st;
    char size[32] = ""; /* a device or FIFO has no size to show */
    if (stat(pos[1], &st) == 0 && S_ISREG(st.st_mode)) snprintf(size, sizeof size, " -> %.1f MiB", file_mib(pos[1]));
    fprintf(stderr, "rbee: wrote %s (%s): %.1f MiB%s in %.1f s with %ld threads\n",
            pos[1], rb_ftype_name(ftype), file_mib(pos[0]), size, now_s() - t0, n_threads);
    return 0;
}
