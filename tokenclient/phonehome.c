/* tokenclient/phonehome.c - phone home (tps-protocol §5): GET the issuer's service document
 * with libcurl and parse it with expat. */
#include "tokenclient/tc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <expat.h>

#define PH_MAX_DOC 65536
#define PH_MAX_DEPTH 16

struct ph_parse {
    struct tc_service *svc;
    int depth;
    const char *stack[PH_MAX_DEPTH];
    char *field; /* the element of svc being filled, or NULL */
    size_t field_cap, field_len;
    bool saw_root, too_deep;
};

/* Where the text of element `name` under /ServiceInfo[/Services] goes. */
static char *
field_for(struct ph_parse *p, const char *name, size_t *cap)
{
    struct tc_service *s = p->svc;

    if (p->depth == 2 && strcmp(p->stack[0], "ServiceInfo") == 0 &&
        strcmp(name, "IssuerName") == 0) {
        *cap = sizeof(s->issuer);
        return s->issuer;
    }
    if (p->depth != 3 || strcmp(p->stack[0], "ServiceInfo") != 0 ||
        strcmp(p->stack[1], "Services") != 0)
        return NULL;
    if (strcmp(name, "Operation") == 0) {
        *cap = sizeof(s->operation);
        return s->operation;
    }
    if (strcmp(name, "UI") == 0) {
        *cap = sizeof(s->ui);
        return s->ui;
    }
    if (strcmp(name, "EnrolledTokenURL") == 0) {
        *cap = sizeof(s->enrolled_url);
        return s->enrolled_url;
    }
    if (strcmp(name, "EnrolledTokenBrowserURL") == 0) {
        *cap = sizeof(s->browser_url);
        return s->browser_url;
    }
    if (strcmp(name, "TokenType") == 0) {
        *cap = sizeof(s->token_type);
        return s->token_type;
    }
    return NULL;
}

static void XMLCALL
on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct ph_parse *p = ud;

    (void)attrs;
    if (p->depth >= PH_MAX_DEPTH) {
        p->too_deep = true;
        return;
    }
    if (p->depth == 0 && strcmp(name, "ServiceInfo") == 0)
        p->saw_root = true;
    p->stack[p->depth++] = strcmp(name, "ServiceInfo") == 0 ? "ServiceInfo"
                           : strcmp(name, "Services") == 0  ? "Services"
                                                            : "";
    p->field = field_for(p, name, &p->field_cap);
    p->field_len = 0;
    if (p->field != NULL)
        p->field[0] = 0;
}

static void XMLCALL
on_end(void *ud, const XML_Char *name)
{
    struct ph_parse *p = ud;

    (void)name;
    if (p->depth > 0)
        p->depth--;
    p->field = NULL;
}

static void XMLCALL
on_text(void *ud, const XML_Char *s, int len)
{
    struct ph_parse *p = ud;

    if (p->field == NULL || len <= 0)
        return;
    /* element texts have no surrounding whitespace (§5.2); drop what does not fit */
    for (int i = 0; i < len && p->field_len + 1 < p->field_cap; i++) {
        if ((unsigned char)s[i] < 0x20)
            continue;
        p->field[p->field_len++] = s[i];
    }
    p->field[p->field_len] = 0;
}

enum tc_rc
tc_phonehome_parse(const char *xml, size_t len, struct tc_service *svc, char *err,
                   size_t errlen)
{
    struct ph_parse p;
    XML_Parser x;
    enum tc_rc rc = TC_OK;

    memset(svc, 0, sizeof(*svc));
    memset(&p, 0, sizeof(p));
    p.svc = svc;
    x = XML_ParserCreate("UTF-8");
    if (x == NULL) {
        snprintf(err, errlen, "out of memory");
        return TC_EPROTO;
    }
    XML_SetUserData(x, &p);
    XML_SetElementHandler(x, on_start, on_end);
    XML_SetCharacterDataHandler(x, on_text);
    if (len > PH_MAX_DOC || XML_Parse(x, xml, (int)len, XML_TRUE) == XML_STATUS_ERROR) {
        snprintf(err, errlen, "phone-home document is not well-formed XML (line %lu: %s)",
                 (unsigned long)XML_GetCurrentLineNumber(x), XML_ErrorString(XML_GetErrorCode(x)));
        rc = TC_EPROTO;
    } else if (p.too_deep || !p.saw_root) {
        snprintf(err, errlen, "phone-home document has no ServiceInfo root element");
        rc = TC_EPROTO;
    } else if (svc->operation[0] == 0) {
        snprintf(err, errlen, "phone-home document names no Services/Operation URL");
        rc = TC_EPROTO;
    } else if (strncmp(svc->operation, "http://", 7) != 0 &&
               strncmp(svc->operation, "https://", 8) != 0) {
        snprintf(err, errlen, "phone-home Operation '%.64s' is not an http(s) URL",
                 svc->operation);
        rc = TC_EPROTO;
    }
    XML_ParserFree(x);
    return rc;
}

struct ph_body {
    char data[PH_MAX_DOC];
    size_t len;
    bool too_big;
};

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
    struct ph_body *b = ud;
    size_t len = size * n;

    if (len > sizeof(b->data) - b->len) {
        b->too_big = true;
        return 0;
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return len;
}

enum tc_rc
tc_phonehome(const char *url, const char *cuid, const char *cacert, int timeout_ms,
             struct tc_service *svc, char *err, size_t errlen)
{
    struct ph_body *body;
    char full[1024];
    CURL *c;
    CURLcode cc;
    long status = 0;
    enum tc_rc rc;

    snprintf(full, sizeof(full), "%s%scuid=%s", url, strchr(url, '?') ? "&" : "?", cuid);
    body = calloc(1, sizeof(*body));
    c = body ? curl_easy_init() : NULL;
    if (c == NULL) {
        snprintf(err, errlen, "libcurl initialisation failed");
        free(body);
        return TC_ENET;
    }
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 5000 ? timeout_ms : 5000));
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    if (cacert != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, cacert);
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (body->too_big) {
        snprintf(err, errlen, "phone-home document from %s is larger than %d bytes", url,
                 PH_MAX_DOC);
        rc = TC_EPROTO;
    } else if (cc != CURLE_OK) {
        snprintf(err, errlen, "cannot phone home to %s: %s", url, curl_easy_strerror(cc));
        rc = TC_ENET;
    } else if (status != 200) {
        snprintf(err, errlen, "phone home to %s: HTTP status %ld", url, status);
        rc = TC_ENET;
    } else {
        rc = tc_phonehome_parse(body->data, body->len, svc, err, errlen);
    }
    free(body);
    return rc;
}
