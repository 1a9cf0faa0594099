/* gateway/enroll_profile.c - the pure side of enrollment: the enroll key table, token profiles
 * (op.enroll.<type>.keyGen.*, renewal.*), renewal windows, the generate / renew / recover
 * decision (tokendb §1.7, §1.8), z0 assembly (card spec §6.3), and the CA/KRA connectors. */
#include "gateway/enroll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/crypto.h"
#include "common/p11obj.h"
#include "gateway/keygen.h"
#include "gateway/session.h"
#include "gateway/tks.h"

static const char *const schemes[] = {"GenerateNewKey", "RecoverLast",
                                      "GenerateNewKeyAndRecoverLast", "", NULL};

#define U(n, lo, hi, d, doc_)                                                                    \
    {.name = n, .type = CFG_UINT, .min = lo, .max = hi, .def = d, .doc = doc_}
#define B(n, d, doc_) {.name = n, .type = CFG_BOOL, .def = d, .doc = doc_}
#define S(n, d, doc_) {.name = n, .type = CFG_STR, .defstr = d, .doc = doc_}

const struct cmn_cfg_key tps_enroll_cfg_keys[] = {
    U("op.enroll.*.keyGen.keyType.num", 0, TPS_ENROLL_MAX_KEYS, 0,
      "number of certificates of the token type (Dogtag)"),
    S("op.enroll.*.keyGen.keyType.value.*", "", "key type of certificate <i>: signing, "
                                                "encryption ... (Dogtag)"),
    U("op.enroll.*.keyGen.*.keySize", 256, 2048, 1024,
      "key size: RSA 1024 or 2048, EC 256 (P-256) or 384 (P-384) (Dogtag)"),
    S("op.enroll.*.keyGen.*.certId", "", "certificate object C<N>, N 0..4 (Dogtag)"),
    S("op.enroll.*.keyGen.*.certAttrId", "", "attribute object c<N>; must match certId"),
    U("op.enroll.*.keyGen.*.privateKeyNumber", 0, 9, 0, "private key slot; 0 = 2N (Dogtag)"),
    U("op.enroll.*.keyGen.*.publicKeyNumber", 0, 9, 0, "public key slot; 0 = 2N+1 (Dogtag)"),
    U("op.enroll.*.keyGen.*.keyUser", 0, 15, 0, "PIN allowed to use the key, 15 = anyone"),
    U("op.enroll.*.keyGen.*.keyUsage", 0, 15, 0, "GENERATE KEY key usage nibble (Dogtag)"),
    S("op.enroll.*.keyGen.*.label", "$type$ key for $userid$",
      "PKCS#11 label; $userid$ $cuid$ $type$ $keyType$ (Dogtag)"),
    S("op.enroll.*.keyGen.*.alg", "2",
      "1 or 2 = RSA, 5 = EC on a prime curve chosen by keySize (Dogtag RA_Algs); EC keys are "
      "generated on the card only"),
    B("op.enroll.*.keyGen.*.keyCapabilities.*", 0,
      "PKCS#11 capabilities (Dogtag); sign or decrypt/unwrap choose the usage, else by name"),
    {.name = "op.enroll.*.keyGen.*.recovery.*.scheme", .type = CFG_ENUM, .words = schemes,
     .defstr = "", .doc = "GenerateNewKey | RecoverLast | GenerateNewKeyAndRecoverLast per "
                          "tokenReason (Dogtag); empty: RecoverLast for archived encryption "
                          "keys after destroyed/keyCompromise, GenerateNewKey otherwise"},
    U("op.enroll.*.renewal.keyType.num", 0, TPS_ENROLL_MAX_KEYS, 0,
      "number of renewable key types (Dogtag)"),
    S("op.enroll.*.renewal.keyType.value.*", "", "renewable key type <i> (Dogtag)"),
    B("op.enroll.*.renewal.*.enable", 0, "renew this key type when due (Dogtag)"),
    B("op.enroll.*.renewal.*.gracePeriod.enable", 0, "renew only inside the window (Dogtag)"),
    U("op.enroll.*.renewal.*.gracePeriod.before", 0, 3650, 30,
      "days before notAfter the window opens (Dogtag)"),
    U("op.enroll.*.renewal.*.gracePeriod.after", 0, 3650, 30,
      "days after notAfter the window closes (Dogtag)"),
    B("op.enroll.allowMultiActiveToken.user", 0,
      "a user may hold several ACTIVE tokens (Java tps.enroll.allowMultiActiveToken.user)"),
    B("op.*.*.pinReset.enable", 1, "ask for a new PIN (Dogtag)"),
    U("op.*.*.pinReset.pin.minLen", 4, 16, 4, "shortest PIN (Dogtag)"),
    U("op.*.*.pinReset.pin.maxLen", 4, 16, 10, "longest PIN (Dogtag)"),
    U("op.*.*.pinReset.pin.maxRetries", 1, 127, 127, "PIN tries before it blocks (Dogtag)"),
    B("op.enroll.*.pkcs11obj.enable", 1, "write the combined z0 object (Dogtag; only mode)"),
    B("op.enroll.*.pkcs11obj.compress.enable", 1, "zlib-compress z0 (Dogtag)"),
    {.name = "create_pin.string", .type = CFG_STR, .defstr = "password", .secret = true,
     .doc = "initial value of PIN 0 before SET PIN (Dogtag)"},
    {0},
};

#undef U
#undef B
#undef S

static const char *const reasons[3] = {"destroyed", "keyCompromise", "onHold"};

static const char *
str(const struct cmn_cfg *c, const char *key)
{
    const char *v = cmn_cfg_str(c, key);
    return v ? v : "";
}

static const char *
k1(char *buf, size_t cap, const char *type, const char *mid, const char *kt, const char *leaf)
{
    snprintf(buf, cap, "op.enroll.%s.%s.%s.%s", type, mid, kt, leaf);
    return buf;
}

/* certId "C3" -> 3. */
static bool
cert_no(const char *v, char letter, unsigned *n)
{
    if (v[0] != letter || v[1] < '0' || v[1] > '4' || v[2] != '\0')
        return false;
    *n = (unsigned)(v[1] - '0');
    return true;
}

static void
copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

/* keyGen.<kt>.alg and keySize (Dogtag RA_Algs: 1 RSA, 2 RSA CRT, 3 DSA, 4 EC F2m, 5 EC Fp;
 * the EC curve is nistp<keySize>, as the Dogtag TPS derives it). */
static enum tps_rc
load_alg(const struct cmn_cfg *c, const char *type, const char *kt, struct tps_enroll_key *k,
         char *err, size_t errlen)
{
    char akey[CMN_CFG_MAX_KEY], skey[CMN_CFG_MAX_KEY];
    const char *alg = str(c, k1(akey, sizeof(akey), type, "keyGen", kt, "alg"));

    k->key_bits = (unsigned)cmn_cfg_uint(c, k1(skey, sizeof(skey), type, "keyGen", kt,
                                               "keySize"));
    if (strcmp(alg, "1") == 0 || strcmp(alg, "2") == 0) {
        k->ec = false;
        if (k->key_bits != 1024 && k->key_bits != 2048) {
            snprintf(err, errlen, "key '%s' = %u: RSA keys (%s = %s) must be 1024 or 2048", skey,
                     k->key_bits, akey, alg);
            return TPS_ECONFIG;
        }
    } else if (strcmp(alg, "5") == 0) {
        k->ec = true;
        if (cmn_ec_curve(k->key_bits) == NULL) {
            snprintf(err, errlen, "key '%s' = %u: EC keys (%s = 5) must be 256 (P-256) or 384 "
                     "(P-384)", skey, k->key_bits, akey);
            return TPS_ECONFIG;
        }
    } else if (strcmp(alg, "4") == 0) {
        snprintf(err, errlen, "key '%s' = 4: EC over binary fields is not supported; use 5 "
                 "(prime curves)", akey);
        return TPS_ECONFIG;
    } else {
        snprintf(err, errlen, "key '%s' = '%s': must be 2 (RSA) or 5 (EC)", akey, alg);
        return TPS_ECONFIG;
    }
    return TPS_OK;
}

/* Server-side keygen (the KRA) makes RSA keys only here. */
static enum tps_rc
check_ec_keygen(const struct cmn_cfg *c, const char *type, const char *kt, bool ec, char *err,
                size_t errlen)
{
    char key[CMN_CFG_MAX_KEY];

    if (!ec || !cmn_cfg_bool(c, k1(key, sizeof(key), type, "keyGen", kt, "serverKeygen.enable")))
        return TPS_OK;
    snprintf(err, errlen, "key type %s of token type %s: EC keys (alg=5) are generated on the card "
             "only; set %s=false or use alg=2 (RSA)", kt, type, key);
    return TPS_ECONFIG;
}

struct algs_walk {
    const struct cmn_cfg *cfg;
    struct cmn_buf *errs;
    size_t nerr;
};

/* One token type: the alg, keySize and EC rules of each of its key types. */
static bool
check_type_algs(void *arg, const char *type)
{
    struct algs_walk *w = arg;
    char key[CMN_CFG_MAX_KEY], where[300], err[512];
    unsigned long n;

    snprintf(key, sizeof(key), "op.enroll.%s.keyGen.keyType.num", type);
    if (!cmn_cfg_isset(w->cfg, key))
        return true;
    n = (unsigned long)cmn_cfg_uint(w->cfg, key);
    for (unsigned i = 0; i < n; i++) {
        struct tps_enroll_key k;
        const char *kt;

        snprintf(key, sizeof(key), "op.enroll.%s.keyGen.keyType.value.%u", type, i);
        kt = str(w->cfg, key);
        if (kt[0] == '\0' || strlen(kt) >= TPS_ENROLL_NAME_MAX || strchr(kt, '.') != NULL)
            continue; /* the profile load names that one */
        memset(&k, 0, sizeof(k));
        if (load_alg(w->cfg, type, kt, &k, err, sizeof(err)) != TPS_OK ||
            check_ec_keygen(w->cfg, type, kt, k.ec, err, sizeof(err)) != TPS_OK) {
            snprintf(key, sizeof(key), "op.enroll.%s.keyGen.%s.alg", type, kt);
            if (w->errs != NULL)
                (void)cmn_buf_printf(w->errs, "%s: %s\n",
                                     cmn_cfg_where(w->cfg, key, where, sizeof(where)), err);
            w->nerr++;
        }
    }
    return true;
}

size_t
tps_enroll_cfg_check(const struct cmn_cfg *cfg, struct cmn_buf *errs)
{
    struct algs_walk w = {.cfg = cfg, .errs = errs, .nerr = 0};

    cmn_cfg_children(cfg, "op.enroll.", check_type_algs, &w);
    return w.nerr;
}

static enum tps_rc
load_key(const struct cmn_cfg *c, const char *type, const char *kt, unsigned idx,
         struct tps_enroll_key *k, char *err, size_t errlen)
{
    char key[CMN_CFG_MAX_KEY];
    const char *v;
    enum tps_rc rc;

    memset(k, 0, sizeof(*k));
    copy(k->key_type, sizeof(k->key_type), kt);
    v = str(c, k1(key, sizeof(key), type, "keyGen", kt, "certId"));
    if (v[0] == '\0') {
        k->cert_no = idx + 1; /* Dogtag: C1 signing, C2 encryption */
    } else if (!cert_no(v, 'C', &k->cert_no)) {
        snprintf(err, errlen, "key '%s' = '%s': must be C0..C4", key, v);
        return TPS_ECONFIG;
    }
    v = str(c, k1(key, sizeof(key), type, "keyGen", kt, "certAttrId"));
    if (v[0] != '\0') {
        unsigned n;
        if (!cert_no(v, 'c', &n) || n != k->cert_no) {
            snprintf(err, errlen, "key '%s' = '%s': must be c%u like certId", key, v,
                     k->cert_no);
            return TPS_ECONFIG;
        }
    }
    if (k->cert_no > 4) {
        snprintf(err, errlen, "key type %s: certificate number %u above 4", kt, k->cert_no);
        return TPS_ECONFIG;
    }
    k->priv_no = (uint8_t)cmn_cfg_uint(c, k1(key, sizeof(key), type, "keyGen", kt,
                                             "privateKeyNumber"));
    k->pub_no = (uint8_t)cmn_cfg_uint(c, k1(key, sizeof(key), type, "keyGen", kt,
                                            "publicKeyNumber"));
    if (k->priv_no == 0 && k->pub_no == 0) {
        k->priv_no = (uint8_t)(2 * k->cert_no);
        k->pub_no = (uint8_t)(2 * k->cert_no + 1);
    }
    /* coolkey and OpenSC tie key k(2N)/k(2N+1) to certificate N (card spec §6.1). */
    if (k->priv_no != 2 * k->cert_no || k->pub_no != 2 * k->cert_no + 1) {
        snprintf(err, errlen, "key type %s: key slots %u/%u do not match certificate C%u "
                 "(need %u/%u)", kt, k->priv_no, k->pub_no, k->cert_no, 2 * k->cert_no,
                 2 * k->cert_no + 1);
        return TPS_ECONFIG;
    }
    k->key_user = (uint8_t)cmn_cfg_uint(c, k1(key, sizeof(key), type, "keyGen", kt, "keyUser"));
    k->key_usage =
        (uint8_t)cmn_cfg_uint(c, k1(key, sizeof(key), type, "keyGen", kt, "keyUsage"));
    rc = load_alg(c, type, kt, k, err, errlen);
    if (rc != TPS_OK)
        return rc;
    copy(k->label, sizeof(k->label), str(c, k1(key, sizeof(key), type, "keyGen", kt, "label")));
    if (cmn_cfg_bool(c, k1(key, sizeof(key), type, "keyGen", kt, "keyCapabilities.sign")))
        k->usage |= CMN_P11OBJ_USE_SIGN;
    if (cmn_cfg_bool(c, k1(key, sizeof(key), type, "keyGen", kt, "keyCapabilities.decrypt")) ||
        cmn_cfg_bool(c, k1(key, sizeof(key), type, "keyGen", kt, "keyCapabilities.unwrap")))
        k->usage |= CMN_P11OBJ_USE_ENCRYPT;
    if (k->usage == 0)
        k->usage = strcmp(kt, "encryption") == 0 ? CMN_P11OBJ_USE_ENCRYPT : CMN_P11OBJ_USE_SIGN;
    copy(k->profile_id, sizeof(k->profile_id),
         str(c, k1(key, sizeof(key), type, "keyGen", kt, "ca.profileId")));
    if (k->profile_id[0] == '\0') {
        snprintf(err, errlen, "key type %s of token type %s: set %s", kt, type, key);
        return TPS_ECONFIG;
    }
    copy(k->ca_conn, sizeof(k->ca_conn), str(c, k1(key, sizeof(key), type, "keyGen", kt,
                                                   "ca.conn")));
    k->server_keygen =
        cmn_cfg_bool(c, k1(key, sizeof(key), type, "keyGen", kt, "serverKeygen.enable"));
    k->archive = cmn_cfg_bool(c, k1(key, sizeof(key), type, "keyGen", kt,
                                    "serverKeygen.archive"));
    copy(k->drm_conn, sizeof(k->drm_conn),
         str(c, k1(key, sizeof(key), type, "keyGen", kt, "serverKeygen.drm.conn")));
    rc = check_ec_keygen(c, type, kt, k->ec, err, errlen);
    if (rc != TPS_OK)
        return rc;
    for (size_t r = 0; r < 3; r++) {
        char leaf[64];
        snprintf(leaf, sizeof(leaf), "recovery.%s.scheme", reasons[r]);
        int e = cmn_cfg_enum(c, k1(key, sizeof(key), type, "keyGen", kt, leaf));
        if (e == 0 || e == 1 || e == 2)
            k->recovery[r] = (enum tps_recovery_scheme)e;
        else /* default: recover what was archived when the old key may still be needed */
            k->recovery[r] = (k->usage & CMN_P11OBJ_USE_ENCRYPT) && k->server_keygen &&
                                     k->archive && r < 2
                                 ? TPS_RECOVERY_RECOVER_LAST
                                 : TPS_RECOVERY_GENERATE;
        if (k->recovery[r] == TPS_RECOVERY_RECOVER_LAST && !k->server_keygen) {
            snprintf(err, errlen, "key '%s': RecoverLast needs serverKeygen.enable=true "
                     "(only archived keys can be recovered)", key);
            return TPS_ECONFIG;
        }
    }
    k->renew_enable = cmn_cfg_bool(c, k1(key, sizeof(key), type, "renewal", kt, "enable"));
    copy(k->renew_profile_id, sizeof(k->renew_profile_id),
         str(c, k1(key, sizeof(key), type, "renewal", kt, "ca.profileId")));
    copy(k->renew_ca_conn, sizeof(k->renew_ca_conn),
         str(c, k1(key, sizeof(key), type, "renewal", kt, "ca.conn")));
    k->grace_enable =
        cmn_cfg_bool(c, k1(key, sizeof(key), type, "renewal", kt, "gracePeriod.enable"));
    k->grace_before_days = (unsigned)cmn_cfg_uint(
        c, k1(key, sizeof(key), type, "renewal", kt, "gracePeriod.before"));
    k->grace_after_days = (unsigned)cmn_cfg_uint(
        c, k1(key, sizeof(key), type, "renewal", kt, "gracePeriod.after"));
    return TPS_OK;
}

enum tps_rc
tps_enroll_profile_load(const struct cmn_cfg *c, const char *type, struct tps_enroll_profile *p,
                        char *err, size_t errlen)
{
    char key[CMN_CFG_MAX_KEY];
    unsigned long n, nr;
    enum tps_rc rc;

    memset(p, 0, sizeof(*p));
    copy(p->type, sizeof(p->type), type);
    snprintf(key, sizeof(key), "op.enroll.%s.keyGen.keyType.num", type);
    n = (unsigned long)cmn_cfg_uint(c, key);
    if (n == 0) {
        snprintf(err, errlen, "token type %s has no certificates: set %s", type, key);
        return TPS_ECONFIG;
    }
    for (unsigned i = 0; i < n; i++) {
        const char *kt;
        snprintf(key, sizeof(key), "op.enroll.%s.keyGen.keyType.value.%u", type, i);
        kt = str(c, key);
        if (kt[0] == '\0' || strlen(kt) >= TPS_ENROLL_NAME_MAX || strchr(kt, '.') != NULL) {
            snprintf(err, errlen, "key '%s' = '%s': a key type name is required", key, kt);
            return TPS_ECONFIG;
        }
        rc = load_key(c, type, kt, i, &p->keys[i], err, errlen);
        if (rc != TPS_OK)
            return rc;
        for (unsigned j = 0; j < i; j++) {
            if (p->keys[j].cert_no == p->keys[i].cert_no ||
                strcmp(p->keys[j].key_type, kt) == 0) {
                snprintf(err, errlen, "token type %s: key types %s and %s share certificate "
                         "C%u or a name", type, p->keys[j].key_type, kt, p->keys[i].cert_no);
                return TPS_ECONFIG;
            }
        }
        p->n++;
    }
    /* renewal.keyType.value.<i> must name key types of keyGen; renewal.<kt>.enable alone is
     * what the decision reads, so an unlisted key type is never renewed. */
    snprintf(key, sizeof(key), "op.enroll.%s.renewal.keyType.num", type);
    nr = (unsigned long)cmn_cfg_uint(c, key);
    for (size_t i = 0; i < p->n; i++) {
        bool listed = false;
        for (unsigned j = 0; j < nr; j++) {
            snprintf(key, sizeof(key), "op.enroll.%s.renewal.keyType.value.%u", type, j);
            if (strcmp(str(c, key), p->keys[i].key_type) == 0)
                listed = true;
        }
        if (!listed)
            p->keys[i].renew_enable = false;
        if (p->keys[i].renew_enable && p->keys[i].renew_profile_id[0] == '\0') {
            snprintf(err, errlen, "renewal of %s enabled: set op.enroll.%s.renewal.%s."
                     "ca.profileId", p->keys[i].key_type, type, p->keys[i].key_type);
            return TPS_ECONFIG;
        }
    }
    snprintf(key, sizeof(key), "op.enroll.%s.pinReset.enable", type);
    p->pin_reset = cmn_cfg_bool(c, key);
    snprintf(key, sizeof(key), "op.enroll.%s.pinReset.pin.minLen", type);
    p->pin_min = (unsigned)cmn_cfg_uint(c, key);
    snprintf(key, sizeof(key), "op.enroll.%s.pinReset.pin.maxLen", type);
    p->pin_max = (unsigned)cmn_cfg_uint(c, key);
    snprintf(key, sizeof(key), "op.enroll.%s.pinReset.pin.maxRetries", type);
    p->pin_retries = (unsigned)cmn_cfg_uint(c, key);
    if (p->pin_min > p->pin_max) {
        snprintf(err, errlen, "op.enroll.%s.pinReset.pin.minLen %u > maxLen %u", type,
                 p->pin_min, p->pin_max);
        return TPS_ECONFIG;
    }
    snprintf(key, sizeof(key), "op.enroll.%s.pkcs11obj.compress.enable", type);
    p->compress = cmn_cfg_bool(c, key);
    p->allow_multi_active = cmn_cfg_bool(c, "op.enroll.allowMultiActiveToken.user");
    return TPS_OK;
}

bool
tps_enroll_renew_due(const struct tps_enroll_key *k, time_t now, time_t not_after)
{
    if (!k->grace_enable)
        return true;
    return now >= not_after - (time_t)k->grace_before_days * 86400 &&
           now <= not_after + (time_t)k->grace_after_days * 86400;
}

const char *
tps_enroll_action_name(enum tps_enroll_action a)
{
    switch (a) {
    case TPS_ENROLL_GENERATE: return "generate";
    case TPS_ENROLL_RENEW: return "renew";
    case TPS_ENROLL_RECOVER: return "recover";
    case TPS_ENROLL_KEEP: return "keep";
    }
    return "unknown";
}

static int
reason_index(const char *reason)
{
    for (int i = 0; i < 3; i++)
        if (reason != NULL && strcmp(reason, reasons[i]) == 0)
            return i;
    return -1;
}

static void
refuse(struct tps_enroll_plan *plan, int status, const char *why)
{
    plan->status = status;
    snprintf(plan->why, sizeof(plan->why), "%s", why);
}

void
tps_enroll_decide(const struct tps_enroll_profile *p, bool tok_found,
                  enum tps_token_status tok_status, const struct tps_token_policy *policy,
                  const struct tps_enroll_have *have, size_t nhave,
                  const struct tps_enroll_peer *peers, size_t npeers, time_t now,
                  struct tps_enroll_plan *plan)
{
    struct tps_token_policy dflt = {.re_enroll = true};

    memset(plan, 0, sizeof(*plan));
    plan->recover_from = -1;
    if (policy == NULL)
        policy = &dflt;
    for (size_t i = 0; i < p->n; i++)
        plan->act[i] = TPS_ENROLL_GENERATE;
    if (tok_found) {
        switch (tok_status) {
        case TPS_TOKEN_TERMINATED:
            refuse(plan, 35, "token is terminated");
            return;
        case TPS_TOKEN_DAMAGED:
        case TPS_TOKEN_PERM_LOST:
        case TPS_TOKEN_SUSPENDED:
        case TPS_TOKEN_TEMP_LOST_PERM_LOST:
            refuse(plan, 38, "token is reported lost or damaged");
            return;
        case TPS_TOKEN_UNKNOWN:
            refuse(plan, 26, "token has an unknown status");
            return;
        case TPS_TOKEN_ACTIVE: {
            bool any = false;
            if (policy->renew) {
                for (size_t i = 0; i < p->n; i++) {
                    const struct tps_enroll_key *k = &p->keys[i];
                    plan->act[i] = TPS_ENROLL_KEEP;
                    for (size_t j = 0; j < nhave; j++) {
                        if (k->renew_enable && have[j].usable &&
                            strcmp(have[j].key_type, k->key_type) == 0 &&
                            tps_enroll_renew_due(k, now, have[j].not_after)) {
                            plan->act[i] = TPS_ENROLL_RENEW;
                            any = true;
                            break;
                        }
                    }
                }
                if (any)
                    return;
                for (size_t i = 0; i < p->n; i++)
                    plan->act[i] = TPS_ENROLL_GENERATE;
            }
            if (!policy->re_enroll)
                refuse(plan, policy->renew ? 37 : 26,
                       policy->renew ? "no certificate is due for renewal and RE_ENROLL=NO"
                                     : "token is active and its policy has RE_ENROLL=NO");
            return;
        }
        case TPS_TOKEN_FORMATTED:
        case TPS_TOKEN_UNFORMATTED:
            break;
        }
    }
    /* A fresh token: is it the replacement of a lost or damaged one? */
    for (size_t i = 0; i < npeers; i++) {
        const struct tps_enroll_peer *o = &peers[i];
        int r;
        if (o->status == TPS_TOKEN_ACTIVE) {
            if (!p->allow_multi_active) {
                refuse(plan, 34, "the user already holds an active token");
                return;
            }
            continue;
        }
        if (o->status != TPS_TOKEN_DAMAGED && o->status != TPS_TOKEN_PERM_LOST &&
            o->status != TPS_TOKEN_TEMP_LOST_PERM_LOST && o->status != TPS_TOKEN_SUSPENDED)
            continue;
        if (plan->recover_from >= 0)
            continue; /* the newest lost token decides; keep looking for active ones */
        r = reason_index(o->reason);
        if (r < 0)
            r = o->status == TPS_TOKEN_DAMAGED ? 0 : o->status == TPS_TOKEN_SUSPENDED ? 2 : 1;
        for (size_t k = 0; k < p->n; k++)
            if (p->keys[k].recovery[r] == TPS_RECOVERY_RECOVER_LAST) {
                plan->act[k] = TPS_ENROLL_RECOVER;
                plan->recover_from = (int)i;
            }
    }
}

/* The EC fields of one certificate's key; they must outlive the encode (records borrow them). */
struct z0_ec {
    uint8_t params[TPS_KEYGEN_EC_PARAMS_MAX];
    size_t params_len;
    uint8_t point[TPS_KEYGEN_EC_POINT_MAX];
    size_t point_len;
};

/* The records of one certificate; the key type comes from the certificate's own public key, so
 * kept, renewed and recovered certificates get the right one too. A DER whose key cannot be
 * read keeps the RSA records z0 always had (the CA's answer was checked when it came). */
static enum tps_rc
z0_add(struct cmn_p11obj *o, const struct tps_enroll_obj *obj, struct z0_ec *ec)
{
    bool is_ec = false;

    if (tps_keygen_cert_key(obj->der, obj->der_len, &is_ec, ec->params, &ec->params_len,
                            ec->point, &ec->point_len) != TPS_OK)
        is_ec = false;
    if (cmn_p11obj_add_cert(o, obj->cert_no, obj->label, obj->der, obj->der_len,
                            is_ec ? CMN_P11_CKK_EC : CMN_P11_CKK_RSA, obj->usage) != CMN_OK)
        return TPS_ETOOBIG;
    if (is_ec && cmn_p11obj_add_ec(o, obj->cert_no, ec->params, ec->params_len, ec->point,
                                   ec->point_len) != CMN_OK)
        return TPS_ETOOBIG;
    return TPS_OK;
}

enum tps_rc
tps_enroll_build_z0(const uint8_t cuid[10], const char *token_name, uint16_t object_version,
                    const struct tps_enroll_obj *objs, size_t n, bool compress,
                    struct cmn_buf *out)
{
    struct cmn_p11obj *o;
    struct z0_ec *ec;
    enum tps_rc rc = TPS_OK;

    for (size_t i = 0; i < n; i++) {
        if (objs[i].cert_no > 4 || objs[i].der == NULL || objs[i].der_len == 0)
            return TPS_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (objs[j].cert_no == objs[i].cert_no)
                return TPS_EINVAL;
    }
    o = calloc(1, sizeof(*o)); /* about 40 KiB: not on a worker's stack */
    ec = calloc(n > 0 ? n : 1, sizeof(*ec));
    if (o == NULL || ec == NULL) {
        free(o);
        free(ec);
        return TPS_ENOMEM;
    }
    cmn_p11obj_init(o, cuid, token_name, object_version);
    for (size_t i = 0; i < n && rc == TPS_OK; i++)
        rc = z0_add(o, &objs[i], &ec[i]);
    if (rc == TPS_OK && cmn_p11obj_encode(o, compress, out) != CMN_OK)
        rc = TPS_ETOOBIG;
    cmn_p11obj_cleanup(o);
    free(o);
    free(ec);
    return rc;
}

enum tps_rc
tps_enroll_cert_not_after(const uint8_t *der, size_t len, time_t *out)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    struct tm tm;
    enum tps_rc rc = TPS_EPROTO;

    if (x != NULL && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
        *out = timegm(&tm);
        rc = TPS_OK;
    }
    X509_free(x);
    ERR_clear_error();
    return rc;
}

/* ---- connectors of the daemon ------------------------------------------------------ */

#define MAX_CONNS 8

struct tps_enroll_backends {
    size_t nca, nkra;
    struct tps_ca *ca[MAX_CONNS];
    struct tps_kra *kra[MAX_CONNS];
};

struct conn_walk {
    const struct cmn_cfg *cfg;
    struct tps_enroll_backends *b;
    enum tps_rc rc;
    char *err;
    size_t errlen;
};

static bool
add_conn(void *arg, const char *child)
{
    struct conn_walk *w = arg;
    struct tps_enroll_backends *b = w->b;

    if (strncmp(child, "ca", 2) == 0 && child[2] != '\0') {
        if (b->nca == MAX_CONNS) {
            snprintf(w->err, w->errlen, "more than %d CA connectors", MAX_CONNS);
            w->rc = TPS_ECONFIG;
            return false;
        }
        w->rc = tps_ca_new(w->cfg, child, &b->ca[b->nca], w->err, w->errlen);
        if (w->rc == TPS_OK)
            b->nca++;
    } else if (strncmp(child, "drm", 3) == 0 && child[3] != '\0') {
        if (b->nkra == MAX_CONNS) {
            snprintf(w->err, w->errlen, "more than %d KRA connectors", MAX_CONNS);
            w->rc = TPS_ECONFIG;
            return false;
        }
        w->rc = tps_kra_new(w->cfg, child, &b->kra[b->nkra], w->err, w->errlen);
        if (w->rc == TPS_OK)
            b->nkra++;
    }
    return w->rc == TPS_OK;
}

enum tps_rc
tps_enroll_backends_new(const struct cmn_cfg *cfg, struct tps_enroll_backends **out, char *err,
                        size_t errlen)
{
    struct tps_enroll_backends *b = calloc(1, sizeof(*b));
    struct conn_walk w = {.cfg = cfg, .err = err, .errlen = errlen, .rc = TPS_OK};

    *out = NULL;
    if (b == NULL)
        return TPS_ENOMEM;
    w.b = b;
    cmn_cfg_children(cfg, "conn.", add_conn, &w);
    if (w.rc != TPS_OK) {
        tps_enroll_backends_free(b);
        return w.rc;
    }
    *out = b;
    return TPS_OK;
}

void
tps_enroll_backends_lists(const struct tps_enroll_backends *b,
                          void (*fn)(void *arg, const char *id, const struct fo_list *l),
                          void *arg)
{
    for (size_t i = 0; b != NULL && i < b->nca; i++)
        fn(arg, tps_ca_id(b->ca[i]), tps_ca_list(b->ca[i]));
    for (size_t i = 0; b != NULL && i < b->nkra; i++)
        fn(arg, tps_kra_id(b->kra[i]), tps_kra_list(b->kra[i]));
}

void
tps_enroll_backends_free(struct tps_enroll_backends *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->nca; i++)
        tps_ca_free(b->ca[i]);
    for (size_t i = 0; i < b->nkra; i++)
        tps_kra_free(b->kra[i]);
    free(b);
}

struct tps_ca *
tps_enroll_backends_ca(const struct tps_enroll_backends *b, const char *conn)
{
    for (size_t i = 0; b != NULL && conn != NULL && i < b->nca; i++)
        if (strcmp(tps_ca_id(b->ca[i]), conn) == 0)
            return b->ca[i];
    return NULL;
}

static struct tps_ca *
find_ca(struct tps_enroll_backends *b, const char *conn)
{
    return tps_enroll_backends_ca(b, conn);
}

static struct tps_kra *
find_kra(struct tps_enroll_backends *b, const char *conn)
{
    for (size_t i = 0; i < b->nkra; i++)
        if (strcmp(tps_kra_id(b->kra[i]), conn) == 0)
            return b->kra[i];
    return NULL;
}

static enum tps_rc
be_ca_enroll(void *arg, const char *conn, struct fo_req *fo, const struct tps_ca_enroll_req *in,
             struct tps_ca_result *out)
{
    struct tps_ca *ca = find_ca(arg, conn);

    if (ca == NULL) {
        snprintf(out->msg, sizeof(out->msg), "no CA connector %s (conn.%s.hostport)", conn, conn);
        out->outcome = TPS_CA_NOT_DONE;
        return TPS_ECONFIG;
    }
    return tps_ca_enroll(ca, fo, in, out);
}

static enum tps_rc
be_ca_renew(void *arg, const char *conn, struct fo_req *fo, const struct tps_ca_renew_req *in,
            struct tps_ca_result *out)
{
    struct tps_ca *ca = find_ca(arg, conn);

    if (ca == NULL) {
        snprintf(out->msg, sizeof(out->msg), "no CA connector %s (conn.%s.hostport)", conn, conn);
        out->outcome = TPS_CA_NOT_DONE;
        return TPS_ECONFIG;
    }
    return tps_ca_renew(ca, fo, in, out);
}

static enum tps_rc
be_kra_keygen(void *arg, const char *conn, struct fo_req *fo,
              const struct tps_kra_keygen_req *in, struct tps_kra_result *out)
{
    struct tps_kra *k = find_kra(arg, conn);

    if (k == NULL) {
        snprintf(out->msg, sizeof(out->msg), "no KRA connector %s (conn.%s.hostport)", conn,
                 conn);
        out->outcome = TPS_KRA_NOT_DONE;
        return TPS_ECONFIG;
    }
    return tps_kra_keygen(k, fo, in, out);
}

static enum tps_rc
be_kra_recover(void *arg, const char *conn, struct fo_req *fo,
               const struct tps_kra_recovery_req *in, struct tps_kra_result *out)
{
    struct tps_kra *k = find_kra(arg, conn);

    if (k == NULL) {
        snprintf(out->msg, sizeof(out->msg), "no KRA connector %s (conn.%s.hostport)", conn,
                 conn);
        out->outcome = TPS_KRA_NOT_DONE;
        return TPS_ECONFIG;
    }
    return tps_kra_recover(k, fo, in, out);
}

static enum tps_rc
be_ca_find_by_key(void *arg, const char *conn, struct fo_req *fo, const char *sid,
                  const uint8_t *spki, size_t spki_len, struct tps_ca_result *out)
{
    struct tps_ca *ca = find_ca(arg, conn);

    if (ca == NULL) {
        snprintf(out->msg, sizeof(out->msg), "no CA connector %s (conn.%s.hostport)", conn, conn);
        out->outcome = TPS_CA_UNKNOWN;
        return TPS_ECONFIG;
    }
    return tps_ca_find_by_key(ca, fo, sid, spki, spki_len, NULL, -1, out);
}

static enum tps_rc
be_ca_revoke(void *arg, const char *conn, struct fo_req *fo, const char *sid, const char *serial,
             int reason, struct tps_ca_result *out)
{
    struct tps_ca *ca = find_ca(arg, conn);

    if (ca == NULL) {
        snprintf(out->msg, sizeof(out->msg), "no CA connector %s (conn.%s.hostport)", conn, conn);
        out->outcome = TPS_CA_NOT_DONE;
        return TPS_ECONFIG;
    }
    return tps_ca_revoke(ca, fo, sid, serial, reason, out);
}

/* The keygen material the TKS returned with the session keys of s's open channel. */
static enum tps_rc
be_transport(void *arg, struct tps_session *s, struct tps_enroll_transport *out, char *err,
             size_t errlen)
{
    const struct tps_tks_srvkg *k = &s->srvkg;

    (void)arg;
    if (!s->channel_open || !k->have) {
        snprintf(err, errlen,
                 "the TKS returned no serversideKeygen material with the session keys (set "
                 "conn.%s.serverKeygen=true)",
                 s->env->tks != NULL ? s->env->tks->id : "tks1");
        return TPS_ECONFIG;
    }
    if (k->drm_trans_des_len > sizeof(out->drm_trans_des) ||
        k->drm_trans_aes_len > sizeof(out->drm_trans_aes)) {
        snprintf(err, errlen, "TKS transport key blobs too large");
        return TPS_ETOOBIG;
    }
    memcpy(out->drm_trans_des, k->drm_trans_des, k->drm_trans_des_len);
    out->drm_trans_des_len = k->drm_trans_des_len;
    memcpy(out->drm_trans_aes, k->drm_trans_aes, k->drm_trans_aes_len);
    out->drm_trans_aes_len = k->drm_trans_aes_len;
    memcpy(out->kek_wrapped_des, k->kek_wrapped_des, sizeof(out->kek_wrapped_des));
    memcpy(out->keycheck, k->keycheck, sizeof(out->keycheck));
    return TPS_OK;
}

const struct tps_enroll_ops tps_enroll_backends_ops = {
    .ca_enroll = be_ca_enroll,
    .ca_renew = be_ca_renew,
    .kra_keygen = be_kra_keygen,
    .kra_recover = be_kra_recover,
    .transport = be_transport,
    .ca_find_by_key = be_ca_find_by_key,
    .ca_revoke = be_ca_revoke,
};
