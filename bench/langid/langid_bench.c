/* langid_bench.c - accuracy / confidence / speed / memory of one language
 * identifier on bench/langid/corpus.tsv.  C11, like omnirouted.
 *
 *   langid_bench --engine textcat --conf FPDB.conf --prefix DIR/ [options]
 *   langid_bench --engine cld2 [--best-effort | --fallback-best-effort] [options]
 *
 * options:
 *   --name NAME        label used in the report (default: the engine)
 *   --corpus FILE      default corpus.tsv
 *   --best-effort      CLD2 flag kCLDFlagBestEffort on every call
 *   --fallback-best-effort  CLD2: only when the normal call says unknown, ask
 *                      again with kCLDFlagBestEffort; that answer counts as
 *                      unreliable
 *   --allow a,b,c      keep only these BCP 47 tags: textcat takes its best
 *                      allowed candidate, CLD2 its best allowed of the top 3
 *   --predictions FILE write one line per message (TSV) there
 *   --min-seconds S    time the whole corpus in passes for at least S (0.5)
 *   --threads N        re-run the corpus from N threads sharing one handle
 *                      and count answers that differ from the 1-thread run (4)
 *
 * textcat is called through its C API directly; CLD2 through cld2_shim.h.
 * Machine-readable lines start with SUMMARY, LANG, SWEEP (run.sh tabulates).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libexttextcat/textcat.h>

#include "cld2_shim.h"

enum { ENG_TEXTCAT, ENG_CLD2 };

typedef struct {
        char lang[8];
        char tag[16]; /* normal, hard:short, ... */
        char *text;
        size_t len;
        int hard;
        int target; /* one of the five languages the issue is about */
        int line;
} item_t;

typedef struct {
        char pred[24];    /* BCP 47, "und" when the library does not know */
        char raw[40];     /* the library's own code for its answer */
        char detail[160]; /* candidates / top 3, for the predictions file */
        int unknown;      /* library gave no language */
        int reliable;     /* the library's own yes/no reliability signal */
        double conf;      /* a graded confidence, see conf_doc() */
} pred_t;

typedef struct {
        int kind;
        const char *name;
        void *tc; /* textcat handle, shared read-only by all threads */
        int cld2_flags;
        int cld2_fallback;  /* unknown -> ask again with kCLDFlagBestEffort */
        char allow[16][12]; /* --allow list */
        int nallow;
} engine_t;

static const char *const TARGETS[] = {"th", "vi", "tr", "en", "es"};
#define NTARGETS (sizeof TARGETS / sizeof TARGETS[0])

/* ------------------------------------------------------------------ utils */

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(const char *field)
{
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        long kb = -1;
        size_t fl = strlen(field);
        if (!f)
                return -1;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
                        kb = strtol(line + fl + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return kb;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

/* strlcpy: copy what fits, always terminate */
static void copy_str(char *dst, size_t n, const char *src)
{
        size_t l = strlen(src);
        if (n == 0)
                return;
        if (l >= n)
                l = n - 1;
        memcpy(dst, src, l);
        dst[l] = '\0';
}

/* --------------------------------------------------------- code mapping */

/* libexttextcat names are "<lang>-<country>-<encoding>" from fpdb.conf,
 * e.g. "es--utf8", "zh-CN-utf8", "haw-utf8", "az-cyrillic-utf8". */
static void textcat_to_bcp47(const char *name, char *out, size_t n)
{
        static const char *const special[][2] = {
                {"zh-CN-utf8", "zh-Hans"},
                {"zh-TW-utf8", "zh-Hant"},
                {"az-cyrillic-utf8", "az-Cyrl"},
                {"uz-Cyrl-utf8", "uz-Cyrl"},
                {"sr--utf8", "sr-Cyrl"},
                {"sh--utf8", "sr-Latn"},
                {"ha-NG-utf8", "ha"},
                {"emk-Latn-utf8", "emk"},
                {"tzm-Latn-utf8", "tzm-Latn"},
        };
        char buf[64];
        size_t l;
        for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
                if (strcmp(name, special[i][0]) == 0) {
                        copy_str(out, n, special[i][1]);
                        return;
                }
        copy_str(buf, sizeof buf, name);
        l = strlen(buf);
        if (l > 5 && strcmp(buf + l - 5, "-utf8") == 0)
                buf[l -= 5] = '\0';
        while (l > 0 && buf[l - 1] == '-')
                buf[--l] = '\0';
        copy_str(out, n, l ? buf : "und");
}

/* CLD2 codes are mostly ISO 639-1 but a few are legacy or pseudo codes. */
static void cld2_to_bcp47(const char *code, char *out, size_t n)
{
        static const char *const special[][2] = {
                {"iw", "he"},      {"jw", "jv"},  {"no", "nb"},
                {"zh", "zh-Hans"}, {"un", "und"}, {"xxx", "und"},
        };
        for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
                if (strcmp(code, special[i][0]) == 0) {
                        copy_str(out, n, special[i][1]);
                        return;
                }
        /* xx-Latn ... = "some language in this script"; zzb/zzp/zzh/zze = junk */
        if (strncmp(code, "xx-", 3) == 0 || (code[0] == 'z' && code[1] == 'z')) {
                copy_str(out, n, "und");
                return;
        }
        copy_str(out, n, code);
}

static int allowed(const engine_t *e, const char *bcp47)
{
        if (e->nallow == 0)
                return 1;
        for (int i = 0; i < e->nallow; i++)
                if (strcmp(e->allow[i], bcp47) == 0)
                        return 1;
        return 0;
}

/* ------------------------------------------------------------ classify */

static const char *conf_doc(int kind)
{
        return kind == ENG_TEXTCAT ? "conf = 1 when textcat returns a single candidate; otherwise "
                                     "(s2-s1)/s1/0.03 "
                                     "(s = rank-distance score, 0.03 = libexttextcat's "
                                     "THRESHOLDVALUE-1); 0 = UNKNOWN"
                                   : "conf = percent3[0]/100 (share of the text's letters in the "
                                     "top language); "
                                     "0 = unknown";
}

static void classify(const engine_t *e, candidate_t *cand, const item_t *it, pred_t *p)
{
        memset(p, 0, sizeof *p);
        if (e->kind == ENG_TEXTCAT) {
                /* textcat_ClassifyFull with a caller-owned candidate array: textcat_Classify
                 * would write into a buffer inside the shared handle. */
                int cnt = textcat_ClassifyFull(e->tc, it->text, it->len, cand);
                int best = -1;
                if (cnt > 0) {
                        size_t off = 0;
                        for (int i = 0; i < cnt && off < sizeof p->detail; i++)
                                off += (size_t)snprintf(p->detail + off, sizeof p->detail - off,
                                                        "%s%s:%d", i ? " " : "", cand[i].name,
                                                        cand[i].score);
                        for (int i = 0; i < cnt && best < 0; i++) {
                                char tag[24];
                                textcat_to_bcp47(cand[i].name, tag, sizeof tag);
                                if (allowed(e, tag))
                                        best = i;
                        }
                } else {
                        copy_str(p->detail, sizeof p->detail,
                                 cnt == TEXTCAT_RESULT_SHORT ? "SHORT" : "UNKNOWN");
                }
                if (best < 0) {
                        p->unknown = 1;
                        copy_str(p->raw, sizeof p->raw,
                                 cnt == TEXTCAT_RESULT_SHORT ? "SHORT" : "UNKNOWN");
                        copy_str(p->pred, sizeof p->pred, "und");
                        return;
                }
                copy_str(p->raw, sizeof p->raw, cand[best].name);
                textcat_to_bcp47(cand[best].name, p->pred, sizeof p->pred);
                p->reliable = (cnt == 1);
                if (cnt == 1)
                        p->conf = 1.0;
                else if (best == 0 && cand[0].score > 0)
                        p->conf = ((double)(cand[1].score - cand[0].score) / cand[0].score) / 0.03;
                else
                        p->conf = 0.0; /* a better-scored, disallowed candidate exists */
                if (p->conf > 1.0)
                        p->conf = 1.0;
        } else {
                omr_cld2_result r;
                int pick = -1;
                (void)omr_cld2_detect(it->text, it->len, e->cld2_flags, &r);
                snprintf(p->detail, sizeof p->detail, "%s:%d:%.2f %s:%d:%.2f %s:%d:%.2f bytes=%d%s",
                         r.code3[0], r.percent3[0], r.nscore3[0], r.code3[1], r.percent3[1],
                         r.nscore3[1], r.code3[2], r.percent3[2], r.nscore3[2], r.text_bytes,
                         r.reliable ? " reliable" : "");
                if (e->nallow == 0) {
                        char tag[24];
                        cld2_to_bcp47(r.code, tag, sizeof tag);
                        if (strcmp(tag, "und") != 0)
                                pick = 3; /* the summary answer itself */
                } else {
                        for (int i = 0; i < 3 && pick < 0; i++) {
                                char tag[24];
                                cld2_to_bcp47(r.code3[i], tag, sizeof tag);
                                if (r.percent3[i] > 0 && strcmp(tag, "und") != 0 && allowed(e, tag))
                                        pick = i;
                        }
                }
                if (pick < 0 && e->cld2_fallback && !(e->cld2_flags & OMR_CLD2_BEST_EFFORT)) {
                        /* CLD2 said "un": take its best-effort guess, but keep it unreliable */
                        engine_t be = *e;
                        be.cld2_flags |= OMR_CLD2_BEST_EFFORT;
                        be.cld2_fallback = 0;
                        classify(&be, cand, it, p);
                        p->reliable = 0;
                        {
                                char tmp[sizeof p->detail + 16];
                                snprintf(tmp, sizeof tmp, "fallback %s", p->detail);
                                copy_str(p->detail, sizeof p->detail, tmp);
                        }
                        return;
                }
                if (pick < 0) {
                        p->unknown = 1;
                        copy_str(p->raw, sizeof p->raw, r.code);
                        copy_str(p->pred, sizeof p->pred, "und");
                        return;
                }
                copy_str(p->raw, sizeof p->raw, pick == 3 ? r.code : r.code3[pick]);
                cld2_to_bcp47(p->raw, p->pred, sizeof p->pred);
                p->reliable = r.reliable && (pick == 3 || pick == 0);
                p->conf = (pick == 3 ? r.percent3[0] : r.percent3[pick]) / 100.0;
        }
}

/* ------------------------------------------------------------- corpus */

static item_t *load_corpus(const char *path, int *n_out)
{
        FILE *f = fopen(path, "r");
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        char tag[16] = "normal";
        int n = 0, max = 0, lineno = 0;
        item_t *items = NULL;
        if (!f) {
                fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
                exit(2);
        }
        while ((got = getline(&line, &cap, f)) != -1) {
                char *tab;
                lineno++;
                while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
                        line[--got] = '\0';
                if (strncmp(line, "#@ ", 3) == 0) {
                        copy_str(tag, sizeof tag, line + 3);
                        continue;
                }
                if (got == 0 || line[0] == '#')
                        continue;
                tab = strchr(line, '\t');
                if (!tab || tab - line >= 8) {
                        fprintf(stderr, "%s:%d: expected lang<TAB>text\n", path, lineno);
                        exit(2);
                }
                if (n == max) {
                        max = max ? 2 * max : 256;
                        items = realloc(items, (size_t)max * sizeof *items);
                        if (!items)
                                abort();
                }
                memset(&items[n], 0, sizeof items[n]);
                memcpy(items[n].lang, line, (size_t)(tab - line));
                copy_str(items[n].tag, sizeof items[n].tag, tag);
                items[n].text = strdup(tab + 1);
                items[n].len = strlen(items[n].text);
                items[n].hard = strncmp(tag, "hard", 4) == 0;
                items[n].line = lineno;
                for (size_t t = 0; t < NTARGETS; t++)
                        if (strcmp(items[n].lang, TARGETS[t]) == 0)
                                items[n].target = 1;
                n++;
        }
        free(line);
        fclose(f);
        *n_out = n;
        return items;
}

/* ------------------------------------------------------------ threads */

typedef struct {
        const engine_t *e;
        const item_t *items;
        const pred_t *ref;
        int n, passes, mismatches;
} thr_arg_t;

static void *thr_main(void *argp)
{
        thr_arg_t *a = argp;
        candidate_t *cand = a->e->tc ? textcat_GetClassifyFullOutput(a->e->tc) : NULL;
        for (int pass = 0; pass < a->passes; pass++)
                for (int i = 0; i < a->n; i++) {
                        pred_t p;
                        classify(a->e, cand, &a->items[i], &p);
                        if (strcmp(p.raw, a->ref[i].raw) != 0 || p.conf != a->ref[i].conf)
                                a->mismatches++;
                }
        if (cand)
                textcat_ReleaseClassifyFullOutput(a->e->tc, cand);
        return NULL;
}

/* -------------------------------------------------------------- report */

typedef struct {
        int n, correct, unknown, unreliable, rel_n, rel_correct;
} tally_t;

static void tally_add(tally_t *t, const item_t *it, const pred_t *p)
{
        int ok = strcmp(p->pred, it->lang) == 0;
        t->n++;
        t->correct += ok;
        t->unknown += p->unknown;
        t->unreliable += !p->reliable;
        if (p->reliable) {
                t->rel_n++;
                t->rel_correct += ok;
        }
}

static double pct(int a, int b)
{
        return b ? 100.0 * a / b : 0.0;
}

static void usage(void)
{
        fprintf(stderr,
                "usage: langid_bench --engine textcat|cld2 [--conf F --prefix D] "
                "[--best-effort | --fallback-best-effort] [--allow a,b] [--name N] [--corpus F] "
                "[--predictions F] [--min-seconds S] [--threads N]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        engine_t e;
        const char *corpus = "corpus.tsv", *conf = NULL, *prefix = "", *pred_path = NULL;
        double min_seconds = 0.5;
        int nthreads = 4, n;
        item_t *items;
        pred_t *preds;
        candidate_t *cand = NULL;
        long rss0, rss_init, rss_run, hwm;
        double t0, init_ms, first_ms;

        memset(&e, 0, sizeof e);
        e.kind = -1;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (strcmp(a, "--best-effort") == 0) {
                        e.cld2_flags |= OMR_CLD2_BEST_EFFORT;
                        continue;
                }
                if (strcmp(a, "--fallback-best-effort") == 0) {
                        e.cld2_fallback = 1;
                        continue;
                }
                if (!v)
                        usage();
                i++;
                if (strcmp(a, "--engine") == 0)
                        e.kind = strcmp(v, "textcat") == 0 ? ENG_TEXTCAT
                                 : strcmp(v, "cld2") == 0  ? ENG_CLD2
                                                           : -2;
                else if (strcmp(a, "--name") == 0)
                        e.name = v;
                else if (strcmp(a, "--corpus") == 0)
                        corpus = v;
                else if (strcmp(a, "--conf") == 0)
                        conf = v;
                else if (strcmp(a, "--prefix") == 0)
                        prefix = v;
                else if (strcmp(a, "--predictions") == 0)
                        pred_path = v;
                else if (strcmp(a, "--min-seconds") == 0)
                        min_seconds = atof(v);
                else if (strcmp(a, "--threads") == 0)
                        nthreads = atoi(v);
                else if (strcmp(a, "--allow") == 0) {
                        char buf[256], *save = NULL;
                        copy_str(buf, sizeof buf, v);
                        for (char *tok = strtok_r(buf, ",", &save); tok && e.nallow < 16;
                             tok = strtok_r(NULL, ",", &save))
                                copy_str(e.allow[e.nallow++], sizeof e.allow[0], tok);
                } else
                        usage();
        }
        if (e.kind < 0 || (e.kind == ENG_TEXTCAT && !conf))
                usage();
        if (!e.name)
                e.name = e.kind == ENG_TEXTCAT ? "textcat" : "cld2";

        items = load_corpus(corpus, &n);
        preds = calloc((size_t)n, sizeof *preds);

        /* --- start-up: load models (textcat) --- */
        rss0 = rss_kb("VmRSS");
        t0 = now_s();
        if (e.kind == ENG_TEXTCAT) {
                e.tc = special_textcat_Init(conf, prefix);
                if (!e.tc) {
                        fprintf(stderr, "special_textcat_Init(%s, %s) failed\n", conf, prefix);
                        return 1;
                }
                cand = textcat_GetClassifyFullOutput(e.tc);
        }
        init_ms = (now_s() - t0) * 1e3;
        rss_init = rss_kb("VmRSS");

        /* --- one pass for the answers, timing each call --- */
        double *lat = calloc((size_t)n, sizeof *lat);
        for (int i = 0; i < n; i++) {
                double s = now_s();
                classify(&e, cand, &items[i], &preds[i]);
                lat[i] = (now_s() - s) * 1e6;
        }
        first_ms = lat[0] / 1e3;
        rss_run = rss_kb("VmRSS");

        /* --- steady-state speed: whole passes for at least min_seconds --- */
        int passes = 0;
        double el;
        t0 = now_s();
        do {
                for (int i = 0; i < n; i++) {
                        pred_t p;
                        classify(&e, cand, &items[i], &p);
                }
                passes++;
                el = now_s() - t0;
        } while (el < min_seconds);
        double us_mean = el * 1e6 / ((double)passes * n);
        qsort(lat, (size_t)n, sizeof *lat, cmp_double);
        double us_p50 = lat[n / 2], us_p99 = lat[(n * 99) / 100], us_max = lat[n - 1];

        /* --- the same handle from several threads at once --- */
        int mism = 0;
        if (nthreads > 1) {
                pthread_t *th = calloc((size_t)nthreads, sizeof *th);
                thr_arg_t *ta = calloc((size_t)nthreads, sizeof *ta);
                for (int k = 0; k < nthreads; k++) {
                        ta[k] = (thr_arg_t){&e, items, preds, n, 20, 0};
                        pthread_create(&th[k], NULL, thr_main, &ta[k]);
                }
                for (int k = 0; k < nthreads; k++) {
                        pthread_join(th[k], NULL);
                        mism += ta[k].mismatches;
                }
                free(th);
                free(ta);
        }
        hwm = rss_kb("VmHWM");

        /* --- accuracy --- */
        tally_t all = {0}, tgt = {0}, hard = {0}, tgt_normal = {0}, per[32] = {{0}};
        char langs[32][8];
        int nl = 0;
        for (int i = 0; i < n; i++) {
                int l;
                for (l = 0; l < nl; l++)
                        if (strcmp(langs[l], items[i].lang) == 0)
                                break;
                if (l == nl && nl < 32)
                        copy_str(langs[nl++], sizeof langs[0], items[i].lang);
                tally_add(&per[l], &items[i], &preds[i]);
                tally_add(&all, &items[i], &preds[i]);
                if (items[i].target) {
                        tally_add(&tgt, &items[i], &preds[i]);
                        tally_add(items[i].hard ? &hard : &tgt_normal, &items[i], &preds[i]);
                }
        }

        printf("== %s ==\n", e.name);
        if (e.kind == ENG_TEXTCAT)
                printf("library: %s, models: %s (prefix %s)\n", textcat_Version(), conf, prefix);
        else
                printf("library: CLD2 %s%s%s\n", omr_cld2_version(),
                       e.cld2_flags & OMR_CLD2_BEST_EFFORT ? ", flag kCLDFlagBestEffort" : "",
                       e.cld2_fallback
                               ? ", unknown -> second call with kCLDFlagBestEffort (unreliable)"
                               : "");
        if (e.nallow) {
                printf("restricted to:");
                for (int i = 0; i < e.nallow; i++)
                        printf(" %s", e.allow[i]);
                printf("\n");
        }
        printf("%-10s %5s %9s %8s %11s %12s\n", "lang", "n", "accuracy", "unknown", "unreliable",
               "acc|reliable");
        for (int l = 0; l < nl; l++) {
                tally_t *t = &per[l];
                printf("%-10s %5d %8.1f%% %7.1f%% %10.1f%% %11.1f%%\n", langs[l], t->n,
                       pct(t->correct, t->n), pct(t->unknown, t->n), pct(t->unreliable, t->n),
                       pct(t->rel_correct, t->rel_n));
                printf("LANG\t%s\t%s\t%d\t%d\n", e.name, langs[l], t->correct, t->n);
        }
        const struct {
                const char *label;
                tally_t *t;
        } rows[] = {{"5 targets", &tgt}, {" normal", &tgt_normal}, {" hard", &hard}, {"all", &all}};
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
                tally_t *t = rows[r].t;
                printf("%-10s %5d %8.1f%% %7.1f%% %10.1f%% %11.1f%%\n", rows[r].label, t->n,
                       pct(t->correct, t->n), pct(t->unknown, t->n), pct(t->unreliable, t->n),
                       pct(t->rel_correct, t->rel_n));
        }

        /* hard subset by kind, 5 target languages */
        {
                const char *kinds[] = {"hard:short", "hard:nodiac", "hard:mixed", "hard:typo"};
                int c[4] = {0}, m[4] = {0};
                for (int i = 0; i < n; i++)
                        for (size_t k = 0; k < 4; k++)
                                if (items[i].target && strcmp(items[i].tag, kinds[k]) == 0) {
                                        m[k]++;
                                        c[k] += strcmp(preds[i].pred, items[i].lang) == 0;
                                }
                printf("hard, by kind (5 targets):");
                for (size_t k = 0; k < 4; k++)
                        printf("  %s %d/%d", kinds[k] + 5, c[k], m[k]);
                printf("\n");
                for (size_t k = 0; k < 4; k++)
                        printf("HARDKIND\t%s\t%s\t%d\t%d\n", e.name, kinds[k] + 5, c[k], m[k]);
        }

        /* confidence: accuracy vs coverage over the 5 target languages */
        printf("confidence signal: %s\n", conf_doc(e.kind));
        printf("  %-22s %9s %9s %7s\n", "accept when", "coverage", "accuracy", "wrong");
        {
                const double th[] = {0.0, 0.34, 0.5, 0.67, 0.8, 0.9, 1.0};
                int cov = 0, ok = 0;
                for (int i = 0; i < n; i++)
                        if (items[i].target && !preds[i].unknown) {
                                cov++;
                                ok += strcmp(preds[i].pred, items[i].lang) == 0;
                        }
                printf("  %-22s %8.1f%% %8.1f%% %7d\n", "any answer", pct(cov, tgt.n), pct(ok, cov),
                       cov - ok);
                printf("SWEEP\t%s\tany\t%.1f\t%.1f\t%d\n", e.name, pct(cov, tgt.n), pct(ok, cov),
                       cov - ok);
                cov = ok = 0;
                for (int i = 0; i < n; i++)
                        if (items[i].target && preds[i].reliable) {
                                cov++;
                                ok += strcmp(preds[i].pred, items[i].lang) == 0;
                        }
                printf("  %-22s %8.1f%% %8.1f%% %7d\n", "reliable flag", pct(cov, tgt.n),
                       pct(ok, cov), cov - ok);
                printf("SWEEP\t%s\treliable\t%.1f\t%.1f\t%d\n", e.name, pct(cov, tgt.n),
                       pct(ok, cov), cov - ok);
                for (size_t k = 1; k < sizeof th / sizeof th[0]; k++) {
                        char lbl[32];
                        cov = ok = 0;
                        for (int i = 0; i < n; i++)
                                if (items[i].target && !preds[i].unknown &&
                                    preds[i].conf >= th[k] - 1e-9) {
                                        cov++;
                                        ok += strcmp(preds[i].pred, items[i].lang) == 0;
                                }
                        snprintf(lbl, sizeof lbl, "conf >= %.2f", th[k]);
                        printf("  %-22s %8.1f%% %8.1f%% %7d\n", lbl, pct(cov, tgt.n), pct(ok, cov),
                               cov - ok);
                        printf("SWEEP\t%s\tconf>=%.2f\t%.1f\t%.1f\t%d\n", e.name, th[k],
                               pct(cov, tgt.n), pct(ok, cov), cov - ok);
                }
        }

        /* the most common confusions */
        {
                char keys[64][40];
                int cnt[64], nk = 0;
                for (int i = 0; i < n; i++) {
                        char k[40];
                        int j;
                        if (strcmp(preds[i].pred, items[i].lang) == 0)
                                continue;
                        snprintf(k, sizeof k, "%s->%s", items[i].lang, preds[i].pred);
                        for (j = 0; j < nk; j++)
                                if (strcmp(keys[j], k) == 0)
                                        break;
                        if (j == nk && nk < 64) {
                                copy_str(keys[nk], sizeof keys[0], k);
                                cnt[nk++] = 0;
                        }
                        if (j < 64)
                                cnt[j]++;
                }
                printf("errors (label->answer):");
                for (int round = 0; round < nk; round++) {
                        int b = -1;
                        for (int j = 0; j < nk; j++)
                                if (cnt[j] > 0 && (b < 0 || cnt[j] > cnt[b]))
                                        b = j;
                        if (b < 0)
                                break;
                        printf(" %s x%d", keys[b], cnt[b]);
                        cnt[b] = -cnt[b];
                }
                printf("\n");
        }

        printf("speed: %.1f us/message mean over %d passes of %d (p50 %.1f, p99 %.1f, max %.1f us "
               "in the first pass)\n",
               us_mean, passes, n, us_p50, us_p99, us_max);
        printf("start-up: init %.2f ms, first call %.3f ms; RSS %ld kB at start, +%ld kB after "
               "init, "
               "+%ld kB after one pass; peak RSS %ld kB\n",
               init_ms, first_ms, rss0, rss_init - rss0, rss_run - rss0, hwm);
        printf("threads: %d threads x 20 passes on one shared handle: %d answers differ from the "
               "1-thread run\n",
               nthreads, mism);
        printf("SUMMARY\t%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.2f\t%ld\t%"
               "d\n",
               e.name, tgt.n, pct(tgt.correct, tgt.n), pct(all.correct, all.n),
               pct(hard.correct, hard.n), pct(tgt.unknown, tgt.n), pct(tgt.unreliable, tgt.n),
               pct(tgt.rel_correct, tgt.rel_n), pct(tgt.rel_n, tgt.n), us_mean, us_p99, init_ms,
               rss_run - rss0, mism);

        if (pred_path) {
                FILE *f = fopen(pred_path, "w");
                if (!f) {
                        fprintf(stderr, "cannot write %s\n", pred_path);
                        return 1;
                }
                fprintf(f, "line\tlang\ttag\tok\tanswer\traw\treliable\tconf\tdetail\ttext\n");
                for (int i = 0; i < n; i++)
                        fprintf(f, "%d\t%s\t%s\t%d\t%s\t%s\t%d\t%.2f\t%s\t%s\n", items[i].line,
                                items[i].lang, items[i].tag,
                                strcmp(preds[i].pred, items[i].lang) == 0, preds[i].pred,
                                preds[i].raw, preds[i].reliable, preds[i].conf, preds[i].detail,
                                items[i].text);
                fclose(f);
        }

        if (cand)
                textcat_ReleaseClassifyFullOutput(e.tc, cand);
        if (e.tc)
                textcat_Done(e.tc);
        for (int i = 0; i < n; i++)
                free(items[i].text);
        free(items);
        free(preds);
        free(lat);
        return 0;
}
