/* main.c: the otelite command line. `run` (the default) loads and checks
 * the config, starts the pipelines and the self-telemetry endpoint, then
 * waits for signals: SIGHUP reloads, SIGTERM/SIGINT shut down gracefully.
 * `validate`, `components` and `print-config` are the same loading path
 * without starting anything. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "pipeline/factory.h"
#include "base/log.h"
#include "pipeline/plan.h"
#include "pipeline/notify.h"
#include "pipeline/service.h"
#include "telemetry/telemetry.h"
#include "pipeline/telemetry_server.h"
#include "base/version.h"


#define EXIT_USAGE 2

typedef struct cli {
    const char *cmd;
    const char *configs[32];
    size_t n_configs;
    const char *sets[64];
    size_t n_sets;
    const char *log_level;
    int json; /* --format: 0 text, 1 json, 2 markdown */
    int verbose;
} cli;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: otelite [COMMAND] [OPTIONS]\n"
            "\n"
            "commands:\n"
            "  run            run the pipelines of the config (default)\n"
            "  validate       check the config, print every problem; exit 0 valid, 1 invalid\n"
            "  components     list component types, their signals and settings\n"
            "  print-config   print the merged, expanded config with secrets redacted\n"
            "\n"
            "options:\n"
            "  --config FILE       config file; repeat to merge several in order\n"
            "  --set KEY.PATH=VAL  override one setting (after all files); repeatable\n"
            "  --log-level LEVEL   debug, info, warn or error (overrides the config)\n"
            "  --format FORMAT     validate: text or json; components: text or markdown\n"
            "  --verbose           components: every key with type, default and help\n"
            "  --version, --help\n"
            "\n"
            "signals: SIGHUP reloads the config (a bad one is refused and the old pipelines\n"
            "keep running); SIGTERM and SIGINT flush and exit.\n");
}

/* Accepts "--opt VALUE" and "--opt=VALUE". */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc)
        return "";
    return argv[++*i];
}

static int parse_cli(int argc, char **argv, cli *c)
{
    memset(c, 0, sizeof *c);
    c->cmd = "run";
    int i = 1;
    if (argc > 1 && argv[1][0] != '-')
        c->cmd = argv[i++];
    for (; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            c->cmd = "help";
        } else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-v")) {
            c->cmd = "version";
        } else if (!strcmp(argv[i], "--verbose")) {
            c->verbose = 1;
        } else if ((v = opt_value(argc, argv, &i, "--config")) ||
                   (v = opt_value(argc, argv, &i, "-c"))) {
            if (!*v || c->n_configs == 32)
                return fprintf(stderr, "otelite: --config needs a file\n"), -1;
            c->configs[c->n_configs++] = v;
        } else if ((v = opt_value(argc, argv, &i, "--set"))) {
            if (!*v || c->n_sets == 64)
                return fprintf(stderr, "otelite: --set needs KEY.PATH=VALUE\n"), -1;
            c->sets[c->n_sets++] = v;
        } else if ((v = opt_value(argc, argv, &i, "--log-level"))) {
            if (ot_log_parse_level(v) < 0)
                return fprintf(stderr, "otelite: --log-level: expected debug, info, warn or error, found \"%s\"\n", v), -1;
            c->log_level = v;
        } else if ((v = opt_value(argc, argv, &i, "--format"))) {
            if (strcmp(v, "json") && strcmp(v, "text") && strcmp(v, "markdown"))
                return fprintf(stderr, "otelite: --format: expected text, json or markdown, found \"%s\"\n", v), -1;
            c->json = !strcmp(v, "json") ? 1 : !strcmp(v, "markdown") ? 2 : 0;
        } else {
            return fprintf(stderr, "otelite: unknown option \"%s\" (see --help)\n", argv[i]), -1;
        }
    }
    return 0;
}

static ot_config *load(const cli *c, ot_diags *d)
{
    return ot_config_load(c->configs, c->n_configs, c->sets, c->n_sets, d);
}

static int need_config(const cli *c)
{
    if (c->n_configs)
        return 0;
    fprintf(stderr, "otelite %s: --config FILE is required\n", c->cmd);
    return -1;
}

static int cmd_validate(const cli *c)
{
    ot_diags d;
    ot_diags_init(&d);
    ot_config *cfg = load(c, &d);
    ot_plan *p = cfg ? ot_plan_build(cfg, &d) : NULL;
    ot_diags_sort(&d);
    if (c->json) {
        ot_diags_print_json(&d, stdout);
    } else {
        ot_diags_print(&d, stderr);
        if (d.errors)
            fprintf(stderr, "%zu error%s, %zu warning%s: the config is invalid\n", d.errors,
                    d.errors == 1 ? "" : "s", d.warnings, d.warnings == 1 ? "" : "s");
        else
            printf("the config is valid (%zu warning%s)\n", d.warnings, d.warnings == 1 ? "" : "s");
    }
    int rc = d.errors ? 1 : 0;
    if (p)
        ot_plan_unref(p);
    else
        ot_config_free(cfg);
    ot_diags_free(&d);
    return rc;
}

static int cmd_print_config(const cli *c)
{
    ot_diags d;
    ot_diags_init(&d);
    ot_config *cfg = load(c, &d);
    ot_diags_sort(&d);
    ot_diags_print(&d, stderr);
    int rc = 1;
    if (cfg && !d.errors) {
        ot_node_write_yaml(ot_config_root(cfg), true, stdout);
        rc = 0;
    }
    ot_config_free(cfg);
    ot_diags_free(&d);
    return rc;
}

static void signals_line(unsigned mask, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s%s", mask & OT_SIGBIT(OT_TRACES) ? "traces " : "",
             mask & OT_SIGBIT(OT_METRICS) ? "metrics " : "", mask & OT_SIGBIT(OT_LOGS) ? "logs" : "");
}

/* docs/components.md is this output; a test keeps the two equal. */
static int components_markdown(void)
{
    printf("# otelite components\n\n"
           "Generated by `otelite components --format markdown` from the key tables the\n"
           "config loader walks; `make docs` rewrites this file.\n");
    for (ot_kind k = 0; k < OT_KIND_COUNT; k++) {
        printf("\n## %s\n", ot_kind_section(k));
        for (size_t i = 0; ot_factories[i]; i++) {
            const ot_factory *f = ot_factories[i];
            if (f->kind != k)
                continue;
            char sig[64];
            signals_line(f->signals, sig, sizeof sig);
            printf("\n### `%s`\n\n%s.", f->type, f->help);
            if (k != OT_EXTENSION)
                printf(" Signals: %s.", sig);
            printf("\n\n");
            if (!f->keys || !f->keys[0].name) {
                printf("No settings.\n");
                continue;
            }
            printf("| key | type | default | |\n|---|---|---|---|\n");
            ot_keys_describe_md(f->keys, stdout, "");
        }
    }
    return 0;
}

static int cmd_components(const cli *c)
{
    if (c->json == 2)
        return components_markdown();
    for (ot_kind k = 0; k < OT_KIND_COUNT; k++) {
        printf("%s:\n", ot_kind_section(k));
        for (size_t i = 0; ot_factories[i]; i++) {
            const ot_factory *f = ot_factories[i];
            if (f->kind != k)
                continue;
            char sig[64];
            signals_line(f->signals, sig, sizeof sig);
            printf("  %-16s %-22s %s\n", f->type, k == OT_EXTENSION ? "" : sig, f->help);
            if (c->verbose && f->keys)
                ot_keys_describe(f->keys, stdout, 4);
        }
    }
    return 0;
}

/* ---- run --------------------------------------------------------------- */

typedef struct agent {
    const cli *cli;
    ot_plan *plan;
    ot_service *svc;
    ot_tel_server *tel;
} agent;

static void log_diags(const ot_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const ot_diag *g = &d->v[i];
        ot_log(g->sev == OT_SEV_ERROR ? OT_LOG_ERROR : OT_LOG_WARN, "config", g->msg,
               "file=%s line=%d col=%d path=%s", g->file, g->line, g->col,
               g->path && *g->path ? g->path : "-");
    }
}

/* Loads and checks; on errors logs them and returns NULL. */
static ot_plan *load_plan(const cli *c)
{
    ot_diags d;
    ot_diags_init(&d);
    ot_config *cfg = load(c, &d);
    ot_plan *p = cfg ? ot_plan_build(cfg, &d) : NULL;
    ot_diags_sort(&d);
    log_diags(&d);
    if (!p)
        ot_config_free(cfg);
    ot_diags_free(&d);
    return p;
}

static void apply_log_level(const agent *a)
{
    int l = a->cli->log_level ? ot_log_parse_level(a->cli->log_level) : a->plan->telemetry.log_level;
    ot_log_set_level((ot_log_level)l);
}

/* Starts, moves or stops the self-telemetry server to match the plan. */
static int sync_telemetry(agent *a, ot_err *err)
{
    const ot_plan_telemetry *t = &a->plan->telemetry;
    ot_tel_server_cfg tc = {.endpoint = &t->metrics_endpoint, .tls = &t->metrics_tls,
                            .authenticator = t->metrics_auth.authenticator};
    if (t->metrics_level != 0 && a->tel && ot_tel_server_matches(a->tel, &tc))
        return 0;
    if (a->tel) {
        ot_tel_server_stop(a->tel);
        a->tel = NULL;
    }
    if (t->metrics_level == 0)
        return 0;
    a->tel = ot_tel_server_start_cfg(&tc, err);
    if (!a->tel)
        return ot_err_prefix(err, "service.telemetry.metrics");
    ot_info("telemetry", "serving /metrics, /healthz, /readyz", "endpoint=%s tls=%s auth=%s",
            t->metrics_endpoint.text, t->metrics_tls.present ? "on" : "off",
            tc.authenticator && *tc.authenticator ? tc.authenticator : "none");
    return 0;
}

/* Hands /metrics the authenticator it names in the running service. */
static void attach_telemetry_auth(agent *a)
{
    const char *id = ot_tel_server_authenticator(a->tel);
    if (!id || !a->svc)
        return;
    ot_err err = {{0}};
    ot_auth *au = ot_service_authenticator(a->svc, id, &err);
    if (!au)
        ot_error("telemetry", "/metrics refuses every scrape", "error=\"%s\"", err.msg);
    ot_tel_server_set_auth(a->tel, au);
}

static void reload(agent *a)
{
    ot_info("agent", "reloading config", NULL);
    ot_plan *p = load_plan(a->cli);
    if (!p) {
        ot_error("agent", "reload refused: the new config is invalid; the running pipelines are kept",
                 NULL);
        return;
    }
    ot_err err = {{0}};
    /* the reload may free the extension /metrics asks: it refuses until
     * it is handed the new one */
    ot_tel_server_set_auth(a->tel, NULL);
    int rc = ot_service_reload(a->svc, p, &err);
    if (rc < 0) {
        ot_error("agent", "reload failed; the running pipelines are kept", "error=\"%s\"", err.msg);
        ot_plan_unref(p);
        attach_telemetry_auth(a);
        return;
    }
    if (rc > 0)
        ot_error("agent", "config reloaded with errors: a component did not start",
                 "error=\"%s\"", err.msg);
    ot_plan_unref(a->plan);
    a->plan = p;
    apply_log_level(a);
    if (sync_telemetry(a, &err) < 0)
        ot_error("telemetry", "cannot serve self-telemetry", "error=\"%s\"", err.msg);
    attach_telemetry_auth(a);
    ot_service_stats st = ot_service_get_stats(a->svc);
    ot_info("agent", "config reloaded",
            "receivers_kept=%u exporters_kept=%u receivers_created=%u exporters_created=%u",
            st.receivers_kept, st.exporters_kept, st.receivers_created, st.exporters_created);
}

static int cmd_run(const cli *c)
{
    /* Signals are taken by sigwait in this thread only; every thread the
     * components start inherits the blocked mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* glibc gives each busy thread its own malloc arena and keeps what is
     * freed there; with several I/O and sender threads that doubled peak
     * RSS under load (JSON scenario: 95 → 48 MiB) for no speed. Two is
     * enough for the threads that allocate on the hot path. */
    mallopt(M_ARENA_MAX, 2);

    agent a;
    memset(&a, 0, sizeof a);
    a.cli = c;
    if (c->log_level)
        ot_log_set_level((ot_log_level)ot_log_parse_level(c->log_level));
    a.plan = load_plan(c);
    if (!a.plan) {
        ot_error("agent", "the config is invalid; not starting", NULL);
        return 1;
    }
    apply_log_level(&a);
    ot_err err = {{0}};
    int rc = 0;
    if (sync_telemetry(&a, &err) < 0) {
        ot_error("agent", "cannot start", "error=\"%s\"", err.msg);
        rc = 1;
        goto out;
    }
    a.svc = ot_service_start(a.plan, &err);
    if (!a.svc) {
        ot_error("agent", "cannot start", "error=\"%s\"", err.msg);
        rc = 1;
        goto out;
    }
    attach_telemetry_auth(&a);
    ot_tel_set_ready(true);
    ot_notify_ready();
    ot_info("agent", "started", "version=%s pid=%ld pipelines=%zu", OT_VERSION, (long)getpid(),
            a.plan->n_pipes);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            /* READY=1 ends a reload whatever came of it: a refused config
             * leaves the running pipelines, as ready as before. */
            ot_notify_reloading();
            reload(&a);
            ot_notify_ready();
            continue;
        }
        ot_info("agent", "shutting down", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
    ot_tel_set_ready(false);
    ot_notify_stopping();
    ot_tel_server_set_auth(a.tel, NULL);
    ot_service_shutdown(a.svc, ot_now_ns() + a.plan->telemetry.shutdown_timeout_ns);
    ot_info("agent", "stopped", NULL);
out:
    ot_tel_server_stop(a.tel);
    ot_plan_unref(a.plan);
    ot_tel_reset();
    return rc;
}

int main(int argc, char **argv)
{
    cli c;
    if (parse_cli(argc, argv, &c) < 0)
        return EXIT_USAGE;
    if (!strcmp(c.cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(c.cmd, "version")) {
        printf("otelite %s (%s)\n", OT_VERSION, ot_revision());
        return 0;
    }
    if (!strcmp(c.cmd, "components"))
        return cmd_components(&c);
    if (strcmp(c.cmd, "run") && strcmp(c.cmd, "validate") && strcmp(c.cmd, "print-config")) {
        fprintf(stderr, "otelite: unknown command \"%s\" (see --help)\n", c.cmd);
        return EXIT_USAGE;
    }
    if (need_config(&c) < 0)
        return EXIT_USAGE;
    if (!strcmp(c.cmd, "validate"))
        return cmd_validate(&c);
    if (!strcmp(c.cmd, "print-config"))
        return cmd_print_config(&c);
    return cmd_run(&c);
}
