/* tests/sim/p11.c - PKCS#11 key reads for the TKS double (dlopen'd module, one session per
 * lookup so that keys added or renamed by tkskey are seen at once). */
#include "tests/sim/p11.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "common/buf.h"

struct sim_p11 {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    char pin[256];
    bool has_pin;
};

void
sim_p11_free(struct sim_p11 *p)
{
    if (p == NULL)
        return;
    if (p->f != NULL)
        (void)p->f->C_Finalize(NULL);
    if (p->dl != NULL)
        dlclose(p->dl);
    cmn_wipe(p->pin, sizeof(p->pin));
    free(p);
}

enum cmn_rc
sim_p11_open(const char *module, const char *pin, struct sim_p11 **out, char *why,
             size_t why_size)
{
    struct sim_p11 *p = calloc(1, sizeof(*p));
    CK_C_GetFunctionList getfl;
    CK_C_INITIALIZE_ARGS args;
    CK_RV rv;

    *out = NULL;
    if (p == NULL)
        return CMN_ENOMEM;
    if (pin != NULL) {
        if (strlen(pin) >= sizeof(p->pin)) {
            snprintf(why, why_size, "PIN too long");
            sim_p11_free(p);
            return CMN_EINVAL;
        }
        memcpy(p->pin, pin, strlen(pin) + 1);
        p->has_pin = true;
    }
    p->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (p->dl == NULL) {
        snprintf(why, why_size, "cannot load PKCS#11 module %s: %s", module, dlerror());
        sim_p11_free(p);
        return CMN_EIO;
    }
    /* POSIX dlsym returns an object pointer; the conversion to a function pointer is the
     * documented way to use it. */
    *(void **)&getfl = dlsym(p->dl, "C_GetFunctionList");
    if (getfl == NULL || getfl(&p->f) != CKR_OK || p->f == NULL) {
        snprintf(why, why_size, "%s: no usable C_GetFunctionList", module);
        p->f = NULL;
        sim_p11_free(p);
        return CMN_EIO;
    }
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    rv = p->f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        snprintf(why, why_size, "%s: C_Initialize failed (0x%lx)", module, (unsigned long)rv);
        p->f = NULL;
        sim_p11_free(p);
        return CMN_EIO;
    }
    *out = p;
    return CMN_OK;
}

/* Finds the slot holding the token labelled `token` (label blank-padded to 32 bytes). */
static enum cmn_rc
find_slot(struct sim_p11 *p, const char *token, CK_SLOT_ID *slot)
{
    CK_SLOT_ID ids[64];
    CK_ULONG n = 64;
    size_t tl = strlen(token);

    if (tl > 32 || p->f->C_GetSlotList(CK_TRUE, ids, &n) != CKR_OK)
        return CMN_ENOTFOUND;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        size_t l = 32;

        if (p->f->C_GetTokenInfo(ids[i], &ti) != CKR_OK)
            continue;
        while (l > 0 && ti.label[l - 1] == ' ')
            l--;
        if (l == tl && memcmp(ti.label, token, tl) == 0) {
            *slot = ids[i];
            return CMN_OK;
        }
    }
    return CMN_ENOTFOUND;
}

static enum cmn_rc
open_session(struct sim_p11 *p, const char *token, bool rw, CK_SESSION_HANDLE *s)
{
    CK_SLOT_ID slot;
    CK_FLAGS fl = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
    CK_RV rv;

    if (find_slot(p, token, &slot) != CMN_OK)
        return CMN_ENOTFOUND;
    if (p->f->C_OpenSession(slot, fl, NULL, NULL, s) != CKR_OK)
        return CMN_EIO;
    if (p->has_pin) {
        rv = p->f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)p->pin, strlen(p->pin));
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            (void)p->f->C_CloseSession(*s);
            return CMN_EIO;
        }
    }
    return CMN_OK;
}

enum cmn_rc
sim_p11_read_key(struct sim_p11 *p, const char *token, const char *label, struct cmn_key *key)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
    };
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    CK_KEY_TYPE kt = 0;
    uint8_t val[CMN_KEY_MAX];
    CK_ATTRIBUTE get[] = {
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE, val, sizeof(val)},
    };
    CK_SESSION_HANDLE s;
    enum cmn_rc rc;

    rc = open_session(p, token, false, &s);
    if (rc != CMN_OK)
        return rc;
    if (p->f->C_FindObjectsInit(s, tmpl, 2) != CKR_OK) {
        rc = CMN_EIO;
        goto out;
    }
    if (p->f->C_FindObjects(s, h, 2, &n) != CKR_OK)
        n = 0;
    (void)p->f->C_FindObjectsFinal(s);
    if (n != 1) { /* absent, or ambiguous: refuse to guess */
        rc = CMN_ENOTFOUND;
        goto out;
    }
    if (p->f->C_GetAttributeValue(s, h[0], get, 2) != CKR_OK ||
        get[1].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        rc = CMN_EUNSUPP; /* sensitive or not extractable */
        goto out;
    }
    if (kt == CKK_DES2 || kt == CKK_DES3)
        rc = cmn_key_set(key, CMN_KEY_DES3, val, get[1].ulValueLen);
    else if (kt == CKK_AES)
        rc = cmn_key_set(key, CMN_KEY_AES, val, get[1].ulValueLen);
    else
        rc = CMN_EUNSUPP;
out:
    cmn_wipe(val, sizeof(val));
    (void)p->f->C_CloseSession(s);
    return rc;
}

enum cmn_rc
sim_p11_import_key(struct sim_p11 *p, const char *token, const char *label,
                   const struct cmn_key *key, char *why, size_t why_size)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &no, sizeof(no)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},
        {CKA_DERIVE, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
        {CKA_VALUE, (void *)(uintptr_t)key->v, key->len},
    };
    CK_OBJECT_HANDLE h;
    CK_SESSION_HANDLE s;
    CK_RV rv;

    if (key->alg == CMN_KEY_AES)
        kt = CKK_AES;
    else
        kt = key->len == 16 ? CKK_DES2 : CKK_DES3;
    if (open_session(p, token, true, &s) != CMN_OK) {
        snprintf(why, why_size, "token '%s' not found or login failed", token);
        return CMN_EIO;
    }
    rv = p->f->C_CreateObject(s, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &h);
    (void)p->f->C_CloseSession(s);
    if (rv != CKR_OK) {
        snprintf(why, why_size, "C_CreateObject failed (0x%lx)", (unsigned long)rv);
        return CMN_EIO;
    }
    return CMN_OK;
}
