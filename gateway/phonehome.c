/* gateway/phonehome.c - the phone-home document (tps-protocol §5.2, tokendb §4): generated from
 * cluster-wide configuration, element texts without surrounding whitespace, XML-escaped. */
#include "gateway/server.h"

#include <string.h>

#include "gateway/config.h"

static enum tps_rc
element(struct cmn_buf *out, const char *name, const char *text)
{
    if (cmn_buf_printf(out, "<%s>", name) != CMN_OK)
        return TPS_ETOOBIG;
    for (const char *p = text; *p; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '&':
            rep = "&amp;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        default:
            break;
        }
        if ((unsigned char)*p < 0x20)
            continue; /* no control characters in element texts */
        if ((rep ? cmn_buf_puts(out, rep) : cmn_buf_putc(out, (uint8_t)*p)) != CMN_OK)
            return TPS_ETOOBIG;
    }
    if (cmn_buf_printf(out, "</%s>\n", name) != CMN_OK)
        return TPS_ETOOBIG;
    return TPS_OK;
}

enum tps_rc
tps_phonehome_xml(const struct tps_config *cfg, struct cmn_buf *out)
{
    enum tps_rc rc = TPS_OK;

    if (cmn_buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ServiceInfo>\n") != CMN_OK)
        return TPS_ETOOBIG;
    rc = element(out, "IssuerName", tps_cfg_str(cfg, "tps.phoneHome.issuerName"));
    if (rc == TPS_OK && cmn_buf_puts(out, "<Services>\n") != CMN_OK)
        rc = TPS_ETOOBIG;
    if (rc == TPS_OK)
        rc = element(out, "Operation", tps_cfg_str(cfg, "tps.phoneHome.operation"));
    if (rc == TPS_OK)
        rc = element(out, "UI", tps_cfg_str(cfg, "tps.phoneHome.ui"));
    if (rc == TPS_OK)
        rc = element(out, "EnrolledTokenBrowserURL",
                     tps_cfg_str(cfg, "tps.phoneHome.enrolledTokenBrowserURL"));
    if (rc == TPS_OK)
        rc = element(out, "EnrolledTokenURL", tps_cfg_str(cfg, "tps.phoneHome.enrolledTokenURL"));
    if (rc == TPS_OK)
        rc = element(out, "TokenType", tps_cfg_str(cfg, "tps.phoneHome.tokenType"));
    if (rc == TPS_OK && cmn_buf_puts(out, "</Services>\n</ServiceInfo>\n") != CMN_OK)
        rc = TPS_ETOOBIG;
    return rc;
}
