/* common/rc.c - descriptions of the common/ error codes. */
#include "common/rc.h"

const char *
cmn_strerror(enum cmn_rc rc)
{
    switch (rc) {
    case CMN_OK: return "success";
    case CMN_EINVAL: return "invalid argument or malformed input";
    case CMN_ENOMEM: return "out of memory";
    case CMN_ETOOBIG: return "larger than the allowed maximum";
    case CMN_ESHORT: return "input ended too early";
    case CMN_EPROTO: return "protocol error";
    case CMN_EIO: return "input/output error";
    case CMN_ETIMEDOUT: return "timed out";
    case CMN_ECLOSED: return "connection closed by peer";
    case CMN_ECRYPTO: return "cryptographic operation failed";
    case CMN_EAUTH: return "authentication (MAC or cryptogram) failed";
    case CMN_ENOTFOUND: return "not found";
    case CMN_ECONFIG: return "configuration error";
    case CMN_ECARD: return "unexpected card status word";
    case CMN_EUNSUPP: return "not supported";
    }
    return "unknown error";
}
