/* tools/tkskey/p11.c - PKCS#11 module loading, sessions and the key operations of tkskey. */
#include "tools/tkskey/p11.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/buf.h"

const char *
kt_ckr_name(CK_RV rv)
{
    static const struct {
        CK_RV rv;
        const char *name;
    } names[] = {
        {CKR_OK, "CKR_OK"},
        {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
        {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
        {CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY"},
        {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
        {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
        {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
        {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
        {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
        {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
        {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
        {CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE"},
        {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
        {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
        {CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE"},
        {CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE"},
        {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
        {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
        {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
        {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
        {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
        {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
        {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
        {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
        {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
        {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
        {CKR_UNWRAPPING_KEY_HANDLE_INVALID, "CKR_UNWRAPPING_KEY_HANDLE_INVALID"},
        {CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT"},
        {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
        {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
        {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID"},
        {CKR_WRAPPING_KEY_TYPE_INCONSISTENT, "CKR_WRAPPING_KEY_TYPE_INCONSISTENT"},
        {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
        {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
        {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].rv == rv)
            return names[i].name;
    return "CKR_(unknown)";
}

/* Records why a call failed and maps the CK_RV to an exit code. */
static enum kt_rc
fail(struct kt_p11 *p, const char *what, CK_RV rv)
{
    snprintf(p->err, sizeof(p->err), "%s: %s (0x%lx)", what, kt_ckr_name(rv), (unsigned long)rv);
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID ||
        rv == CKR_PIN_LEN_RANGE || rv == CKR_USER_NOT_LOGGED_IN)
        return KT_ELOGIN;
    if (rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID)
        return KT_EMECH;
    return KT_EP11;
}

/* Copies a blank-padded PKCS#11 label field into a C string without the padding. */
static void
unpad(const CK_UTF8CHAR *f, size_t n, char *out)
{
    while (n > 0 && f[n - 1] == ' ')
        n--;
    memcpy(out, f, n);
    out[n] = 0;
}

enum kt_rc
kt_p11_open(struct kt_p11 *p, const char *module, const char *token, const char *pin)
{
    CK_RV (*getlist)(CK_FUNCTION_LIST_PTR_PTR);
    CK_C_INITIALIZE_ARGS args;
    CK_SLOT_ID slots[64];
    CK_ULONG nslots = 64;
    CK_RV rv;
    bool found = false;

    memset(p, 0, sizeof(*p));
    p->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (p->dl == NULL) {
        snprintf(p->err, sizeof(p->err), "cannot load PKCS#11 module %s: %s", module, dlerror());
        return KT_EMODULE;
    }
    *(void **)(&getlist) = dlsym(p->dl, "C_GetFunctionList");
    if (getlist == NULL || getlist(&p->f) != CKR_OK || p->f == NULL) {
        snprintf(p->err, sizeof(p->err), "%s is not a PKCS#11 module (no C_GetFunctionList)",
                 module);
        return KT_EMODULE;
    }
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    rv = p->f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        fail(p, "C_Initialize", rv);
        p->f = NULL;
        return KT_EMODULE;
    }
    rv = p->f->C_GetSlotList(CK_TRUE, slots, &nslots);
    if (rv != CKR_OK)
        return fail(p, "C_GetSlotList", rv) == KT_EP11 ? KT_EMODULE : KT_EMODULE;
    for (CK_ULONG i = 0; i < nslots && !found; i++) {
        CK_TOKEN_INFO ti;
        char label[33];

        if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        unpad(ti.label, sizeof(ti.label), label);
        if (token == NULL || strcmp(label, token) == 0) {
            p->slot = slots[i];
            found = true;
        }
    }
    if (!found) {
        snprintf(p->err, sizeof(p->err),
                 "no token labelled '%s' in %s (list them with: pkcs11-tool --module %s -L)",
                 token ? token : "(any)", module, module);
        return KT_EMODULE;
    }
    rv = p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->s);
    if (rv != CKR_OK) {
        fail(p, "C_OpenSession", rv);
        return KT_EMODULE;
    }
    if (pin != NULL) {
        rv = p->f->C_Login(p->s, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)pin, strlen(pin));
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            enum kt_rc rc = fail(p, "login to the token", rv);

            return rc == KT_EP11 ? KT_ELOGIN : rc;
        }
        p->logged_in = true;
    }
    return KT_OK;
}

void
kt_p11_close(struct kt_p11 *p)
{
    if (p->f != NULL) {
        if (p->logged_in)
            (void)p->f->C_Logout(p->s);
        if (p->s)
            (void)p->f->C_CloseSession(p->s);
        (void)p->f->C_Finalize(NULL);
    }
    if (p->dl != NULL)
        dlclose(p->dl);
    p->f = NULL;
    p->dl = NULL;
}

/* Finds up to `max` objects matching the template. */
static enum kt_rc
find(struct kt_p11 *p, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out, CK_ULONG max,
     CK_ULONG *count)
{
    CK_RV rv;

    rv = p->f->C_FindObjectsInit(p->s, tmpl, n);
    if (rv != CKR_OK)
        return fail(p, "C_FindObjectsInit", rv);
    rv = p->f->C_FindObjects(p->s, out, max, count);
    (void)p->f->C_FindObjectsFinal(p->s);
    if (rv != CKR_OK)
        return fail(p, "C_FindObjects", rv);
    return KT_OK;
}

enum kt_rc
kt_p11_find(struct kt_p11 *p, const char *label, CK_OBJECT_HANDLE *h)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
    };
    CK_OBJECT_HANDLE hs[2];
    CK_ULONG n = 0;
    enum kt_rc rc;

    rc = find(p, t, 2, hs, 2, &n);
    if (rc != KT_OK)
        return rc;
    if (n == 0) {
        snprintf(p->err, sizeof(p->err), "no secret key labelled '%s' on the token", label);
        return KT_ENOTFOUND;
    }
    if (n > 1) {
        snprintf(p->err, sizeof(p->err),
                 "several keys are labelled '%s': rename or delete the extra ones by hand",
                 label);
        return KT_EAMBIGUOUS;
    }
    *h = hs[0];
    return KT_OK;
}

enum kt_rc
kt_p11_refuse_existing(struct kt_p11 *p, const char *label)
{
    CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)(uintptr_t)label, strlen(label)}};
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;
    enum kt_rc rc;

    rc = find(p, t, 1, &h, 1, &n);
    if (rc != KT_OK)
        return rc;
    if (n > 0) {
        snprintf(p->err, sizeof(p->err),
                 "an object labelled '%s' exists already: choose another label, or rename or "
                 "delete the old key first",
                 label);
        return KT_EEXISTS;
    }
    return KT_OK;
}

static enum kt_rc
key_type(struct kt_p11 *p, CK_OBJECT_HANDLE h, CK_KEY_TYPE *kt)
{
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, kt, sizeof(*kt)};
    CK_RV rv = p->f->C_GetAttributeValue(p->s, h, &a, 1);

    return rv == CKR_OK ? KT_OK : fail(p, "reading CKA_KEY_TYPE", rv);
}

enum kt_rc
kt_p11_kcv(struct kt_p11 *p, CK_OBJECT_HANDLE h, uint8_t kcv[4], size_t *kcv_len)
{
    static const uint8_t zeros[16], ones[16] = {1, 1, 1, 1, 1, 1, 1, 1,
                                                1, 1, 1, 1, 1, 1, 1, 1};
    uint8_t iv[16] = {0}, out[16];
    CK_MECHANISM m = {CKM_DES3_ECB, NULL, 0};
    CK_ULONG outlen = sizeof(out);
    const uint8_t *in = zeros;
    CK_ULONG inlen = 8;
    CK_KEY_TYPE kt;
    enum kt_rc rc;
    CK_RV rv;

    rc = key_type(p, h, &kt);
    if (rc != KT_OK)
        return rc;
    if (kt == CKK_AES) {
        m.mechanism = CKM_AES_CBC;
        m.pParameter = iv;
        m.ulParameterLen = sizeof(iv);
        in = ones;
        inlen = 16;
    } else if (kt != CKK_DES2 && kt != CKK_DES3) {
        snprintf(p->err, sizeof(p->err), "KCV: key type 0x%lx is neither DES nor AES",
                 (unsigned long)kt);
        return KT_EP11;
    }
    rv = p->f->C_EncryptInit(p->s, &m, h);
    if (rv != CKR_OK)
        return fail(p, "KCV: C_EncryptInit", rv);
    rv = p->f->C_Encrypt(p->s, (CK_BYTE_PTR)(uintptr_t)in, inlen, out, &outlen);
    if (rv != CKR_OK)
        return fail(p, "KCV: C_Encrypt", rv);
    *kcv_len = kt == CKK_AES ? 3 : 4;
    memcpy(kcv, out, *kcv_len);
    return KT_OK;
}

enum kt_rc
kt_p11_list(struct kt_p11 *p, void (*cb)(const struct kt_keyinfo *k, void *arg), void *arg)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_OBJECT_HANDLE hs[256];
    CK_ULONG n = 0;
    enum kt_rc rc;

    rc = find(p, t, 1, hs, 256, &n);
    if (rc != KT_OK)
        return rc;
    for (CK_ULONG i = 0; i < n; i++) {
        struct kt_keyinfo k;
        CK_BYTE label[KT_MAX_LABEL], id[20];
        CK_ULONG vlen = 0;
        CK_ATTRIBUTE a[] = {
            {CKA_LABEL, label, sizeof(label)},
            {CKA_ID, id, sizeof(id)},
            {CKA_KEY_TYPE, &k.type, sizeof(k.type)},
            {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
        };

        memset(&k, 0, sizeof(k));
        k.h = hs[i];
        /* attributes a token does not have come back with ulValueLen = -1; that is fine */
        (void)p->f->C_GetAttributeValue(p->s, hs[i], a, 4);
        if (a[0].ulValueLen != CK_UNAVAILABLE_INFORMATION && a[0].ulValueLen <= KT_MAX_LABEL) {
            memcpy(k.label, label, a[0].ulValueLen);
            k.label[a[0].ulValueLen] = 0;
        }
        if (a[1].ulValueLen != CK_UNAVAILABLE_INFORMATION && a[1].ulValueLen <= 20)
            (void)cmn_hex_encode(id, a[1].ulValueLen, k.id_hex, sizeof(k.id_hex));
        k.len = a[3].ulValueLen != CK_UNAVAILABLE_INFORMATION ? vlen : 0;
        if (k.len == 0 && k.type == CKK_DES2)
            k.len = 16;
        else if (k.len == 0 && k.type == CKK_DES3)
            k.len = 24;
        if (kt_p11_kcv(p, hs[i], k.kcv, &k.kcv_len) != KT_OK)
            k.kcv_len = 0;
        cb(&k, arg);
    }
    p->err[0] = 0;
    return KT_OK;
}

static CK_KEY_TYPE
ckk(enum kt_keytype t)
{
    switch (t) {
    case KT_KEY_DES2: return CKK_DES2;
    case KT_KEY_DES3: return CKK_DES3;
    case KT_KEY_AES128:
    case KT_KEY_AES256: return CKK_AES;
    }
    return CKK_AES;
}

enum kt_rc
kt_p11_gen_master(struct kt_p11 *p, enum kt_keytype t, const char *label, bool exportable,
                  bool readable, CK_OBJECT_HANDLE *h)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = ckk(t);
    CK_ULONG vlen = kt_keytype_len(t);
    uint8_t id[8];
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, readable ? &no : &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, exportable ? &yes : &no, sizeof(yes)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},
        {CKA_DERIVE, &yes, sizeof(yes)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
        {CKA_ID, id, sizeof(id)},
        {CKA_VALUE_LEN, &vlen, sizeof(vlen)}, /* AES only: DES key gen rejects it */
    };
    CK_ULONG na = sizeof(a) / sizeof(a[0]);
    CK_RV rv;

    if (RAND_bytes(id, sizeof(id)) != 1) {
        snprintf(p->err, sizeof(p->err), "no random bytes for CKA_ID");
        return KT_EP11;
    }
    if (t == KT_KEY_DES2) {
        m.mechanism = CKM_DES2_KEY_GEN;
        na--;
    } else if (t == KT_KEY_DES3) {
        m.mechanism = CKM_DES3_KEY_GEN;
        na--;
    }
    rv = p->f->C_GenerateKey(p->s, &m, a, na, h);
    if (rv != CKR_OK)
        return fail(p, "generating the master key (C_GenerateKey)", rv);
    return KT_OK;
}

enum kt_rc
kt_p11_import_transport(struct kt_p11 *p, enum kt_keytype t, const uint8_t *value,
                        const char *label, CK_OBJECT_HANDLE *h)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = ckk(t);
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_WRAP, &yes, sizeof(yes)},
        {CKA_UNWRAP, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
        {CKA_VALUE, (void *)(uintptr_t)value, kt_keytype_len(t)},
    };
    CK_RV rv;

    rv = p->f->C_CreateObject(p->s, a, sizeof(a) / sizeof(a[0]), h);
    if (rv != CKR_OK)
        return fail(p, "creating the transport key (C_CreateObject)", rv);
    return KT_OK;
}

/* Says which mechanism a wrap format needs and checks the token offers it with `flag`. */
static enum kt_rc
need_mech(struct kt_p11 *p, CK_MECHANISM_TYPE mt, CK_FLAGS flag, const char *name,
          const char *hint)
{
    CK_MECHANISM_INFO mi;
    CK_RV rv = p->f->C_GetMechanismInfo(p->slot, mt, &mi);

    if (rv != CKR_OK || (mi.flags & flag) == 0) {
        snprintf(p->err, sizeof(p->err), "the token cannot %s with %s; %s",
                 flag == CKF_WRAP ? "wrap" : "unwrap", name, hint);
        return KT_EMECH;
    }
    return KT_OK;
}

enum kt_rc
kt_p11_wrap(struct kt_p11 *p, CK_OBJECT_HANDLE tk, CK_OBJECT_HANDLE h, enum kt_wrapfmt fmt,
            uint8_t *out, size_t *out_len)
{
    CK_MECHANISM m = {CKM_DES3_ECB, NULL, 0};
    CK_ULONG n = *out_len;
    enum kt_rc rc;
    CK_RV rv;

    if (fmt == KT_WRAP_KWP) {
        m.mechanism = CKM_AES_KEY_WRAP_PAD;
        rc = need_mech(p, m.mechanism, CKF_WRAP, "CKM_AES_KEY_WRAP_PAD",
                       "use --format tkstool with a DES2 transport key");
    } else {
        rc = need_mech(p, m.mechanism, CKF_WRAP, "CKM_DES3_ECB",
                       "use an AES transport key and --format kwp (SoftHSM2 needs this)");
    }
    if (rc != KT_OK)
        return rc;
    rv = p->f->C_WrapKey(p->s, &m, tk, h, out, &n);
    if (rv == CKR_KEY_UNEXTRACTABLE) {
        snprintf(p->err, sizeof(p->err),
                 "the master key is not extractable: it was generated without --exportable, so "
                 "it cannot leave this token");
        return KT_EP11;
    }
    if (rv != CKR_OK)
        return fail(p, "C_WrapKey", rv);
    *out_len = n;
    return KT_OK;
}

enum kt_rc
kt_p11_unwrap(struct kt_p11 *p, CK_OBJECT_HANDLE tk, const struct kt_wrapped *w,
              const char *label, bool readable, CK_OBJECT_HANDLE *h)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = ckk(w->type);
    CK_MECHANISM m = {w->fmt == KT_WRAP_KWP ? CKM_AES_KEY_WRAP_PAD : CKM_DES3_ECB, NULL, 0};
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)}, /* a session object until its KCV is checked */
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, readable ? &no : &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},
        {CKA_DERIVE, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
    };
    CK_ATTRIBUTE persist[] = {{CKA_TOKEN, &yes, sizeof(yes)}};
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
    uint8_t kcv[4];
    size_t kcv_len;
    enum kt_rc rc;
    CK_RV rv;

    rc = need_mech(p, m.mechanism, CKF_UNWRAP,
                   w->fmt == KT_WRAP_KWP ? "CKM_AES_KEY_WRAP_PAD" : "CKM_DES3_ECB",
                   w->fmt == KT_WRAP_KWP ? "this token cannot receive kwp files"
                                         : "have the sending side use an AES transport key "
                                           "and --format kwp");
    if (rc != KT_OK)
        return rc;
    rv = p->f->C_UnwrapKey(p->s, &m, tk, (CK_BYTE_PTR)(uintptr_t)w->wrapped, w->wrapped_len, a,
                           sizeof(a) / sizeof(a[0]), &tmp);
    if (rv != CKR_OK)
        return fail(p, "unwrapping (C_UnwrapKey): wrong transport key or damaged file", rv);
    rc = kt_p11_kcv(p, tmp, kcv, &kcv_len);
    if (rc != KT_OK)
        goto out;
    /* tkstool files carry 4 KCV bytes, kwp files 3: compare what both have */
    if (cmn_ct_memcmp(kcv, w->kcv, w->kcv_len < kcv_len ? w->kcv_len : kcv_len) != 0) {
        snprintf(p->err, sizeof(p->err),
                 "KCV mismatch: the unwrapped key has KCV %02X%02X%02X, the file says "
                 "%02X%02X%02X; nothing was stored (wrong transport key, or the file was "
                 "altered)",
                 kcv[0], kcv[1], kcv[2], w->kcv[0], w->kcv[1], w->kcv[2]);
        rc = KT_EKCV;
        goto out;
    }
    rv = p->f->C_CopyObject(p->s, tmp, persist, 1, h);
    if (rv != CKR_OK) {
        rc = fail(p, "storing the key on the token (C_CopyObject)", rv);
        goto out;
    }
    rc = KT_OK;
out:
    if (tmp != CK_INVALID_HANDLE)
        (void)p->f->C_DestroyObject(p->s, tmp);
    cmn_wipe(kcv, sizeof(kcv));
    return rc;
}

enum kt_rc
kt_p11_rename(struct kt_p11 *p, CK_OBJECT_HANDLE h, const char *label)
{
    CK_ATTRIBUTE a = {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)};
    CK_RV rv = p->f->C_SetAttributeValue(p->s, h, &a, 1);

    return rv == CKR_OK ? KT_OK : fail(p, "renaming (C_SetAttributeValue)", rv);
}

enum kt_rc
kt_p11_destroy(struct kt_p11 *p, CK_OBJECT_HANDLE h)
{
    CK_RV rv = p->f->C_DestroyObject(p->s, h);

    return rv == CKR_OK ? KT_OK : fail(p, "deleting (C_DestroyObject)", rv);
}
