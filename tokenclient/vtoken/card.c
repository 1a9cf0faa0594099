/* tokenclient/vtoken/card.c - the emulated card: factory configuration, life of a card object,
 * and the APDU dispatcher (SELECT, class routing, secure-channel unwrapping; card spec §1, §4.6). */
#include "tokenclient/vtoken/vtoken.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/buf.h"
#include "tokenclient/vtoken/card.h"

/* card spec §2.1 */
static const uint8_t aid_isd1[] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00};
static const uint8_t aid_isd2[] = {0xA0, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00};
static const uint8_t aid_isd3[] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00};
static const uint8_t aid_coolkey[] = {0x62, 0x76, 0x01, 0xFF, 0x00, 0x00, 0x00};
static const uint8_t aid_coolkey_pkg[] = {0x62, 0x76, 0x01, 0xFF, 0x00, 0x00};
/* FCI of the ISD for SELECT with an empty AID (card spec §2.2) */
static const uint8_t isd_fci[] = {0x6F, 0x0F, 0x84, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x03, 0x00,
                                  0x00, 0xA5, 0x04, 0x9F, 0x65, 0x01, 0xFF};
/* card spec §8.4 */
static const uint8_t default_atr[] = {0x3B, 0x96, 0x13, 0x81, 0x01, 0xFF,
                                      0x62, 0x76, 0x01, 0x00, 0x00, 0xEF};

void
vt_config_default(struct vt_config *c)
{
    static const uint8_t cuid[10] = {0x40, 0x90, 0x79, 0x01, 0x00, 0x1F, 0x12, 0x34, 0x56, 0x78};

    memset(c, 0, sizeof(*c));
    c->proto = CMN_SCP01;
    memcpy(c->cuid, cuid, sizeof(cuid));
    c->msn[3] = 0x01;
    memcpy(c->atr, default_atr, sizeof(default_atr));
    c->atr_len = sizeof(default_atr);
    c->key_version = 0x01;
    c->applet_major = 1;
    c->applet_minor = 4;
    c->applet_build = 0x58768072;
    c->upgrade_major = 1;
    c->upgrade_minor = 4;
    c->upgrade_build = 0x58768072;
    c->applet_present = true;
    c->scp03_i = 0x70;
    c->seq = 1;
    c->mem_total = 0x4000;
}

static enum cmn_rc
cfg_err(char *err, size_t err_size, const char *key, const char *value, const char *why)
{
    if (err != NULL && err_size > 0)
        snprintf(err, err_size, "setting '%s' = '%s': %s", key, value, why);
    return CMN_EINVAL;
}

static bool
hex_exact(const char *s, uint8_t *out, size_t n)
{
    size_t got;

    return cmn_hex_decode(s, strlen(s), false, out, n, &got) == CMN_OK && got == n;
}

static bool
parse_version(const char *s, uint8_t *maj, uint8_t *min, uint32_t *build)
{
    unsigned a, b;
    unsigned long bu;
    char *end;

    /* major.minor.buildhex, e.g. 1.4.58768072 (card spec §3.3) */
    if (sscanf(s, "%u.%u.", &a, &b) != 2 || a > 255 || b > 255)
        return false;
    s = strchr(s, '.');
    s = s != NULL ? strchr(s + 1, '.') : NULL;
    if (s == NULL || s[1] == '\0' || strlen(s + 1) > 8)
        return false;
    bu = strtoul(s + 1, &end, 16);
    if (*end != '\0')
        return false;
    *maj = (uint8_t)a;
    *min = (uint8_t)b;
    *build = (uint32_t)bu;
    return true;
}

enum cmn_rc
vt_config_set(struct vt_config *c, const char *key, const char *value, char *err,
              size_t err_size)
{
    unsigned long long v;
    uint8_t kb[32];
    size_t n;

    if (strcmp(key, "proto") == 0) {
        if (cmn_parse_uint(value, 1, 3, &v) != CMN_OK)
            return cfg_err(err, err_size, key, value, "must be 1, 2 or 3");
        c->proto = (enum cmn_scp_proto)v;
    } else if (strcmp(key, "cuid") == 0) {
        if (!hex_exact(value, c->cuid, 10))
            return cfg_err(err, err_size, key, value, "must be 20 hex digits");
    } else if (strcmp(key, "msn") == 0) {
        if (!hex_exact(value, c->msn, 4))
            return cfg_err(err, err_size, key, value, "must be 8 hex digits");
    } else if (strcmp(key, "atr") == 0) {
        if (cmn_hex_decode(value, strlen(value), false, kb, VT_ATR_MAX, &n) != CMN_OK || n < 2)
            return cfg_err(err, err_size, key, value, "must be 2..33 bytes of hex");
        memcpy(c->atr, kb, n);
        c->atr_len = n;
    } else if (strcmp(key, "key.version") == 0) {
        if (!hex_exact(value, kb, 1) || kb[0] == 0)
            return cfg_err(err, err_size, key, value, "must be one hex byte 01..FF");
        c->key_version = kb[0];
    } else if (strcmp(key, "key.enc") == 0 || strcmp(key, "key.mac") == 0 ||
               strcmp(key, "key.kek") == 0) {
        struct cmn_key *k = key[4] == 'e' ? &c->enc : key[4] == 'm' ? &c->mac : &c->kek;

        if (cmn_hex_decode(value, strlen(value), false, kb, sizeof(kb), &n) != CMN_OK ||
            (n != 16 && n != 32))
            return cfg_err(err, err_size, key, value, "must be 32 or 64 hex digits");
        /* the algorithm is fixed by vt_config_finish() from the protocol */
        k->alg = n == 32 ? CMN_KEY_AES : CMN_KEY_DES3;
        k->len = n;
        memcpy(k->v, kb, n);
        cmn_wipe(kb, sizeof(kb));
        c->keys_set = true;
    } else if (strcmp(key, "applet.version") == 0) {
        if (!parse_version(value, &c->applet_major, &c->applet_minor, &c->applet_build))
            return cfg_err(err, err_size, key, value, "must be major.minor.buildhex");
    } else if (strcmp(key, "applet.upgrade") == 0) {
        if (!parse_version(value, &c->upgrade_major, &c->upgrade_minor, &c->upgrade_build))
            return cfg_err(err, err_size, key, value, "must be major.minor.buildhex");
    } else if (strcmp(key, "applet.present") == 0) {
        if (cmn_parse_uint(value, 0, 1, &v) != CMN_OK)
            return cfg_err(err, err_size, key, value, "must be 0 or 1");
        c->applet_present = v == 1;
    } else if (strcmp(key, "scp03.i") == 0) {
        if (!hex_exact(value, kb, 1))
            return cfg_err(err, err_size, key, value, "must be one hex byte");
        c->scp03_i = kb[0];
    } else if (strcmp(key, "seq") == 0) {
        if (cmn_parse_uint(value, 0, 0xFFFF, &v) != CMN_OK)
            return cfg_err(err, err_size, key, value, "must be 0..65535");
        c->seq = (uint32_t)v;
    } else if (strcmp(key, "memory") == 0) {
        /* GET STATUS reports it as two bytes the Java TPS reads as signed (§3.3) */
        if (cmn_parse_uint(value, 512, 32767, &v) != CMN_OK)
            return cfg_err(err, err_size, key, value, "must be 512..32767");
        c->mem_total = (uint16_t)v;
    } else {
        return cfg_err(err, err_size, key, value, "unknown setting");
    }
    return CMN_OK;
}

enum cmn_rc
vt_config_finish(struct vt_config *c, char *err, size_t err_size)
{
    struct cmn_keyset dev;
    enum cmn_key_alg alg = c->proto == CMN_SCP03 ? CMN_KEY_AES : CMN_KEY_DES3;

    if (!c->keys_set) {
        cmn_keyset_developer(&dev, c->proto, c->key_version);
        c->enc = dev.enc;
        c->mac = dev.mac;
        c->kek = dev.kek;
        cmn_keyset_wipe(&dev);
        return CMN_OK;
    }
    c->enc.alg = c->mac.alg = c->kek.alg = alg;
    if (!cmn_key_valid(&c->enc) || !cmn_key_valid(&c->mac) || !cmn_key_valid(&c->kek) ||
        (alg == CMN_KEY_DES3 && c->enc.len != 16) || c->enc.len != c->mac.len ||
        c->enc.len != c->kek.len) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "key.enc/key.mac/key.kek: all three needed, 16 bytes for "
                                    "SCP01/02, 16 or 32 bytes for SCP03");
        return CMN_EINVAL;
    }
    return CMN_OK;
}

struct vt_card *
vt_card_alloc(void)
{
    struct vt_card *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->proto = CMN_SCP01;
    c->lock_fd = -1;
    (void)cmn_scp_init(&c->scp, CMN_SCP01);
    return c;
}

static void
from_config(struct vt_card *c, const struct vt_config *cfg)
{
    c->proto = cfg->proto;
    memcpy(c->cuid, cfg->cuid, 10);
    memcpy(c->msn, cfg->msn, 4);
    memcpy(c->atr, cfg->atr, cfg->atr_len);
    c->atr_len = cfg->atr_len;
    c->keysets[0].version = cfg->key_version;
    c->keysets[0].enc = cfg->enc;
    c->keysets[0].mac = cfg->mac;
    c->keysets[0].kek = cfg->kek;
    c->nkeysets = 1;
    c->default_kv = cfg->key_version;
    c->seq = cfg->seq;
    c->scp03_i = cfg->scp03_i;
    c->upgrade_major = cfg->upgrade_major;
    c->upgrade_minor = cfg->upgrade_minor;
    c->upgrade_build = cfg->upgrade_build;
    c->applet_major = cfg->applet_major;
    c->applet_minor = cfg->applet_minor;
    c->applet_build = cfg->applet_build;
    if (cfg->applet_present) {
        c->packages[0][0] = sizeof(aid_coolkey_pkg);
        memcpy(&c->packages[0][1], aid_coolkey_pkg, sizeof(aid_coolkey_pkg));
        c->npackages = 1;
        vt_applet_install(c, aid_coolkey, sizeof(aid_coolkey), cfg->mem_total);
        /* the factory applet keeps the configured version, not the upgrade version */
        c->applet_major = cfg->applet_major;
        c->applet_minor = cfg->applet_minor;
        c->applet_build = cfg->applet_build;
    }
    c->mem_total = cfg->mem_total;
    (void)cmn_scp_init(&c->scp, c->proto);
    vt_card_clear_transient(c);
}

enum cmn_rc
vt_card_new(const struct vt_config *cfg, struct vt_card **out)
{
    struct vt_config def;
    struct vt_card *c;

    if (cfg == NULL) {
        vt_config_default(&def);
        if (vt_config_finish(&def, NULL, 0) != CMN_OK)
            return CMN_EINVAL;
        cfg = &def;
    }
    if (cfg->proto < CMN_SCP01 || cfg->proto > CMN_SCP03 || cfg->atr_len == 0 ||
        cfg->atr_len > VT_ATR_MAX || !cmn_key_valid(&cfg->enc))
        return CMN_EINVAL;
    c = vt_card_alloc();
    if (c == NULL)
        return CMN_ENOMEM;
    from_config(c, cfg);
    if (cfg == &def) {
        cmn_key_wipe(&def.enc);
        cmn_key_wipe(&def.mac);
        cmn_key_wipe(&def.kek);
    }
    *out = c;
    return CMN_OK;
}

enum cmn_rc
vt_card_inspect(const char *state_path, struct vt_card **out, char *err, size_t err_size)
{
    struct vt_card *c = vt_card_alloc();
    enum cmn_rc rc;

    if (c == NULL)
        return CMN_ENOMEM;
    rc = vt_state_load(c, state_path, err, err_size);
    if (rc != CMN_OK) {
        vt_card_close(c);
        return rc;
    }
    vt_card_clear_transient(c);
    *out = c; /* path stays NULL: never saved */
    return CMN_OK;
}

/* One card, one owner: an exclusive flock on STATE.lock (the state file itself is replaced
 * by rename on every save, so it cannot carry the lock). */
static int
lock_state(const char *state_path, char *err, size_t err_size)
{
    char lp[4096];
    int fd, n = snprintf(lp, sizeof(lp), "%s.lock", state_path);

    if (n < 0 || (size_t)n >= sizeof(lp))
        return -1;
    fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "%s: %s", lp,
                     fd >= 0 && errno == EWOULDBLOCK ? "card in use by another vtoken"
                                                     : strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

enum cmn_rc
vt_card_open(const char *state_path, const struct vt_config *cfg, struct vt_card **out,
             char *err, size_t err_size)
{
    struct vt_card *c;
    enum cmn_rc rc;
    FILE *f;
    int lock_fd = lock_state(state_path, err, err_size);

    if (lock_fd < 0)
        return CMN_EIO;
    f = fopen(state_path, "r");
    if (f != NULL) {
        fclose(f);
        c = vt_card_alloc();
        if (c == NULL) {
            close(lock_fd);
            return CMN_ENOMEM;
        }
        rc = vt_state_load(c, state_path, err, err_size);
        if (rc != CMN_OK) {
            vt_card_close(c);
            close(lock_fd);
            return rc;
        }
        vt_card_clear_transient(c);
    } else {
        rc = vt_card_new(cfg, &c);
        if (rc != CMN_OK) {
            if (err != NULL && err_size > 0)
                snprintf(err, err_size, "invalid card configuration");
            close(lock_fd);
            return rc;
        }
    }
    c->lock_fd = lock_fd;
    c->path = strdup(state_path);
    if (c->path == NULL) {
        vt_card_close(c);
        return CMN_ENOMEM;
    }
    rc = vt_state_save(c, err, err_size);
    if (rc != CMN_OK) {
        vt_card_close(c);
        return rc;
    }
    *out = c;
    return CMN_OK;
}

enum cmn_rc
vt_card_save(struct vt_card *c, char *err, size_t err_size)
{
    if (c->path == NULL)
        return CMN_OK;
    return vt_state_save(c, err, err_size);
}

void
vt_card_clear_transient(struct vt_card *c)
{
    c->sel = VT_SEL_ISD;
    cmn_scp_cleanup(&c->scp);
    (void)cmn_scp_init(&c->scp, c->proto);
    c->sess_kv = 0;
    cmn_wipe(c->nonce, sizeof(c->nonce));
    c->nonce_valid = false;
    memset(c->logged, 0, sizeof(c->logged));
    c->loading = false;
    c->load_next = 0;
    c->load_bytes = 0;
    vt_applet_deselect(c);
}

void
vt_card_reset(struct vt_card *c)
{
    vt_card_clear_transient(c);
}

void
vt_card_power_off(struct vt_card *c)
{
    vt_card_clear_transient(c);
}

size_t
vt_card_atr(const struct vt_card *c, uint8_t *out, size_t cap)
{
    if (cap < c->atr_len)
        return 0;
    memcpy(out, c->atr, c->atr_len);
    return c->atr_len;
}

void
vt_card_close(struct vt_card *c)
{
    if (c == NULL)
        return;
    cmn_scp_cleanup(&c->scp);
    for (size_t i = 0; i < c->nkeysets; i++)
        cmn_keyset_wipe(&c->keysets[i]);
    vt_applet_remove(c);
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* releases the flock */
    free(c->path);
    cmn_wipe(c, sizeof(*c));
    free(c);
}

void
vt_card_test_fixed_challenge(struct vt_card *c, const uint8_t *challenge)
{
    c->fixed_challenge = challenge != NULL;
    if (challenge != NULL)
        memcpy(c->challenge, challenge, 8);
}

uint8_t
vt_card_life_cycle(const struct vt_card *c)
{
    return c->applet_present ? c->life_cycle : 0x00;
}

bool
vt_card_applet_present(const struct vt_card *c)
{
    return c->applet_present;
}

struct cmn_keyset *
vt_keyset_find(struct vt_card *c, uint8_t version)
{
    for (size_t i = 0; i < c->nkeysets; i++)
        if (c->keysets[i].version == version)
            return &c->keysets[i];
    return NULL;
}

bool
vt_resp_put(struct vt_resp *r, const void *p, size_t n)
{
    if (n > sizeof(r->data) - r->len)
        return false;
    memcpy(r->data + r->len, p, n);
    r->len += n;
    return true;
}

static bool
aid_eq(const struct cmn_apdu *a, const uint8_t *aid, size_t n)
{
    return a->lc == n && memcmp(a->data, aid, n) == 0;
}

static uint16_t
do_select(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r)
{
    bool isd = false;

    if (a->p1 != 0x04)
        return VT_SW_NOT_FOUND_APP; /* only select by AID exists on this card */
    if (a->lc == 0 || aid_eq(a, aid_isd1, sizeof(aid_isd1)) ||
        aid_eq(a, aid_isd2, sizeof(aid_isd2)) || aid_eq(a, aid_isd3, sizeof(aid_isd3)))
        isd = true;
    else if (!c->applet_present || c->applet_aid[0] != a->lc ||
             memcmp(&c->applet_aid[1], a->data, a->lc) != 0)
        return VT_SW_NOT_FOUND_APP; /* never 9000 for an unknown AID (§2.2, §3.1) */
    /* a successful SELECT ends the secure channel and clears the I/O buffer; logins and
     * the nonce survive (§2.2) */
    cmn_scp_cleanup(&c->scp);
    vt_applet_deselect(c);
    if (isd) {
        c->sel = VT_SEL_ISD;
        (void)vt_resp_put(r, isd_fci, sizeof(isd_fci));
    } else {
        c->sel = VT_SEL_APPLET;
    }
    return VT_SW_OK;
}

/* A CLA 84 command other than EXTERNAL AUTHENTICATE: unwrap it or refuse (§4.6 item 3). */
static uint16_t
unwrap(struct vt_card *c, const struct cmn_apdu *wire, struct cmn_apdu *plain)
{
    uint16_t sw = VT_SW_SECURITY;

    if (c->scp.state != CMN_SCP_AUTH) {
        cmn_scp_cleanup(&c->scp); /* INIT --other 84 command--> NONE (§7.2) */
        return VT_SW_SECURITY;
    }
    /* PUT KEY data is KEK-encrypted already: TPS generations differ on adding C-DEC (§5.3) */
    if (cmn_scp_unwrap_ex(&c->scp, wire, wire->ins == 0xD8 ? CMN_SCP_ACCEPT_PLAIN : 0, plain,
                          &sw) != CMN_OK)
        return sw == VT_SW_OK ? VT_SW_SECURITY : sw;
    return VT_SW_OK;
}

static uint16_t
dispatch(struct vt_card *c, const struct cmn_apdu *a, struct vt_resp *r)
{
    struct cmn_apdu plain;
    uint16_t sw;

    if (a->cla == 0x00 && a->ins == 0xA4)
        return do_select(c, a, r);
    if ((a->cla == 0x80 || a->cla == 0x84) && a->ins == 0x50)
        return vt_gp_init_update(c, a, r);
    if (a->cla == 0x84 && a->ins == 0x82)
        return vt_gp_ext_auth(c, a);
    if (c->sel == VT_SEL_ISD) {
        switch (a->cla) {
        case 0x00:
        case 0x80:
            return vt_gp_isd(c, a, false, r);
        case 0x84:
            sw = unwrap(c, a, &plain);
            if (sw != VT_SW_OK)
                return sw;
            return vt_gp_isd(c, &plain, true, r);
        default:
            return VT_SW_CLA;
        }
    }
    /* CoolKey applet: B0 card edge, 80 only INITIALIZE UPDATE, 84 secure handler, 00 ignored
     * (card spec §1.1) */
    switch (a->cla) {
    case 0xB0:
        return vt_applet_cmd(c, a, false, r);
    case 0x84:
        sw = unwrap(c, a, &plain);
        if (sw != VT_SW_OK)
            return sw;
        return vt_applet_cmd(c, &plain, true, r);
    case 0x80:
        return VT_SW_INS;
    case 0x00:
        return VT_SW_OK;
    default:
        return VT_SW_CLA;
    }
}

enum cmn_rc
vt_card_transmit(struct vt_card *c, const uint8_t *apdu, size_t n, uint8_t *resp, size_t cap,
                 size_t *resp_len)
{
    struct cmn_apdu a;
    struct vt_resp *r;
    uint16_t sw;
    enum cmn_rc rc = CMN_OK;

    if (cap < 2)
        return CMN_ETOOBIG;
    r = malloc(sizeof(*r));
    if (r == NULL)
        return CMN_ENOMEM;
    r->len = 0;
    if (cmn_apdu_decode(apdu, n, &a) != CMN_OK)
        sw = VT_SW_WRONG_LENGTH;
    else
        sw = dispatch(c, &a, r);
    if (sw != VT_SW_OK && (sw & 0xFF00) != 0x6100)
        r->len = 0; /* no data with an error status */
    if (r->len + 2 > cap) {
        cmn_wipe(r, sizeof(*r));
        free(r);
        cmn_wipe(&a, sizeof(a));
        return CMN_ETOOBIG;
    }
    memcpy(resp, r->data, r->len);
    resp[r->len] = (uint8_t)(sw >> 8);
    resp[r->len + 1] = (uint8_t)sw;
    *resp_len = r->len + 2;
    cmn_wipe(r, sizeof(*r));
    free(r);
    cmn_wipe(&a, sizeof(a));
    if (c->dirty && c->path != NULL)
        rc = vt_state_save(c, NULL, 0);
    return rc;
}
