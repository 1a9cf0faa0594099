/* tokenclient/ui.c - prompts (echo off for secrets), non-interactive answers, progress. */
#include "tokenclient/tc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

void
tc_ui_say(struct tc_ui *ui, const char *fmt, ...)
{
    va_list ap;

    if (ui->quiet)
        return;
    if (ui->progress_bar && ui->last_pct >= 0)
        fputs("\n", ui->out); /* do not write over the bar */
    ui->last_pct = -1;
    va_start(ap, fmt);
    vfprintf(ui->out, fmt, ap);
    va_end(ap);
    fputs("\n", ui->out);
    fflush(ui->out);
}

/* Reads a secret file: the first line, which must not be readable by others. */
static enum tc_rc
read_secret_file(const char *path, struct cmn_buf *out)
{
    char buf[256];
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "tokenclient: cannot open %s: %s\n", path, strerror(errno));
        return TC_EUSAGE;
    }
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
        fprintf(stderr, "tokenclient: %s can be read by others: chmod 600 it\n", path);
        close(fd);
        return TC_EUSAGE;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        fprintf(stderr, "tokenclient: %s is empty\n", path);
        return TC_EUSAGE;
    }
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    cmn_buf_reset(out);
    if (cmn_buf_puts(out, buf) != CMN_OK) {
        cmn_wipe(buf, sizeof(buf));
        return TC_EUSAGE;
    }
    cmn_wipe(buf, sizeof(buf));
    return TC_OK;
}

/* Reads a line from the terminal; echo off when secret. */
static enum tc_rc
read_tty(const char *prompt, bool secret, struct cmn_buf *out)
{
    char line[256];
    struct termios old, noecho;
    FILE *tty = fopen("/dev/tty", "r+");
    bool ok = false, echo_off = false;

    if (tty == NULL)
        return TC_ECANCEL;
    fputs(prompt, tty);
    fflush(tty);
    if (secret && tcgetattr(fileno(tty), &old) == 0) {
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)ECHO;
        echo_off = tcsetattr(fileno(tty), TCSAFLUSH, &noecho) == 0;
    }
    ok = fgets(line, sizeof(line), tty) != NULL;
    if (echo_off) {
        (void)tcsetattr(fileno(tty), TCSAFLUSH, &old);
        fputs("\n", tty);
    }
    fclose(tty);
    if (!ok) {
        cmn_wipe(line, sizeof(line));
        return TC_ECANCEL;
    }
    line[strcspn(line, "\r\n")] = 0;
    cmn_buf_reset(out);
    ok = cmn_buf_puts(out, line) == CMN_OK;
    cmn_wipe(line, sizeof(line));
    return ok ? TC_OK : TC_ECANCEL;
}

enum tc_rc
tc_ui_ask(struct tc_ui *ui, const char *kind, const char *label, bool secret,
          struct cmn_buf *out)
{
    char prompt[192];
    size_t klen = strlen(kind);

    if (strcmp(kind, "user") == 0 && ui->user != NULL) {
        cmn_buf_reset(out);
        return cmn_buf_puts(out, ui->user) == CMN_OK ? TC_OK : TC_EUSAGE;
    }
    if (strcmp(kind, "password") == 0 && ui->password_file != NULL)
        return read_secret_file(ui->password_file, out);
    if (strcmp(kind, "new_pin") == 0 && ui->new_pin_file != NULL)
        return read_secret_file(ui->new_pin_file, out);
    for (size_t i = 0; i < ui->nparams; i++) {
        if (strncmp(ui->params[i], kind, klen) == 0 && ui->params[i][klen] == '=') {
            cmn_buf_reset(out);
            return cmn_buf_puts(out, ui->params[i] + klen + 1) == CMN_OK ? TC_OK : TC_EUSAGE;
        }
    }
    if (!ui->interactive) {
        tc_ui_say(ui, "tokenclient: the server asks for %s but there is no terminal: give it "
                      "with %s",
                  label,
                  strcmp(kind, "user") == 0       ? "--user"
                  : strcmp(kind, "password") == 0 ? "--password-file"
                  : strcmp(kind, "new_pin") == 0  ? "--new-pin-file"
                                                  : "--param ID=VALUE");
        return TC_ECANCEL;
    }
    if (ui->progress_bar && ui->last_pct >= 0) {
        fputs("\n", ui->out);
        ui->last_pct = -1;
    }
    snprintf(prompt, sizeof(prompt), "%s: ", label);
    return read_tty(prompt, secret, out);
}

/* The characters a new PIN can carry on the wire unencoded (tps-protocol §1.4). */
static const char *
pin_problem(const char *pin, size_t len, unsigned min_len, unsigned max_len)
{
    if (len < min_len || len > max_len)
        return "wrong length";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)pin[i];

        if (ch <= 0x20 || ch >= 0x7F || strchr("&=%+", ch) != NULL)
            return "it may not contain spaces, & = % +, or non-ASCII characters";
    }
    return NULL;
}

enum tc_rc
tc_ui_new_pin(struct tc_ui *ui, unsigned min_len, unsigned max_len, struct cmn_buf *out)
{
    struct cmn_buf again;
    enum tc_rc rc = TC_ECANCEL;

    cmn_buf_init_secret(&again, 256);
    for (int tries = 0; tries < 3; tries++) {
        char label[96];
        const char *why;

        snprintf(label, sizeof(label), "New PIN (%u to %u characters)", min_len, max_len);
        rc = tc_ui_ask(ui, "new_pin", label, true, out);
        if (rc != TC_OK)
            break;
        why = pin_problem(cmn_buf_cstr(out), out->len, min_len, max_len);
        if (why != NULL) {
            tc_ui_say(ui, "This PIN cannot be used: %s.", why);
            rc = TC_ECANCEL;
            if (!ui->interactive || ui->new_pin_file != NULL)
                break;
            continue;
        }
        if (ui->new_pin_file != NULL || !ui->interactive)
            break;
        rc = tc_ui_ask(ui, "new_pin_again", "Type the new PIN again", true, &again);
        if (rc != TC_OK)
            break;
        if (again.len == out->len && cmn_ct_memcmp(again.data, out->data, out->len) == 0)
            break;
        tc_ui_say(ui, "The two PINs differ. Try again.");
        rc = TC_ECANCEL;
    }
    cmn_buf_cleanup(&again);
    if (rc != TC_OK)
        cmn_buf_reset(out);
    return rc;
}

void
tc_ui_progress(struct tc_ui *ui, unsigned pct, const char *task)
{
    if (ui->quiet)
        return;
    if (pct > 100)
        pct = 100;
    if (ui->progress_bar) {
        char bar[41];
        unsigned fill = pct * 40 / 100;

        memset(bar, '#', fill);
        memset(bar + fill, '.', 40 - fill);
        bar[40] = 0;
        fprintf(ui->out, "\r[%s] %3u%% %-32.32s", bar, pct, task ? task : "");
    } else {
        fprintf(ui->out, "progress %u%% %s\n", pct, task ? task : "");
    }
    fflush(ui->out);
    ui->last_pct = (int)pct;
}

void
tc_ui_progress_done(struct tc_ui *ui)
{
    if (ui->progress_bar && ui->last_pct >= 0 && !ui->quiet)
        fputs("\n", ui->out);
    ui->last_pct = -1;
}
