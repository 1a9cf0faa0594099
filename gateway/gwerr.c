/* gateway/gwerr.c - descriptions and peer-visible mappings of tpsgw error codes. */
#include "gateway/gwerr.h"

#include "common/tpsmsg.h"

const char *
tps_strerror(enum tps_rc rc)
{
    switch (rc) {
    case TPS_OK:
        return "success";
    case TPS_EINVAL:
        return "invalid argument";
    case TPS_ENOMEM:
        return "out of memory";
    case TPS_ECONFIG:
        return "configuration error";
    case TPS_EPROTO:
        return "TPS protocol error";
    case TPS_ETIMEDOUT:
        return "timed out";
    case TPS_ECLOSED:
        return "connection closed by the client";
    case TPS_EIO:
        return "input/output error";
    case TPS_ECARD:
        return "unexpected card status word";
    case TPS_EAUTH:
        return "cryptogram or MAC did not verify";
    case TPS_ELOGIN:
        return "authentication failed";
    case TPS_EBACKEND:
        return "backend failed";
    case TPS_EDB:
        return "token database error";
    case TPS_EBUSY:
        return "too many sessions";
    case TPS_EMETHOD:
        return "method not allowed";
    case TPS_EBADREQ:
        return "bad HTTP request";
    case TPS_ENOTFOUND:
        return "not found";
    case TPS_ECRYPTO:
        return "cryptographic operation failed";
    case TPS_EUNSUPP:
        return "not supported";
    case TPS_EPOLICY:
        return "refused by policy";
    case TPS_ETOOBIG:
        return "larger than the allowed maximum";
    }
    return "unknown error";
}

int
tps_rc_http_status(enum tps_rc rc)
{
    switch (rc) {
    case TPS_OK:
        return 200;
    case TPS_EMETHOD:
        return 405;
    case TPS_EBADREQ:
    case TPS_EPROTO:
        return 400;
    case TPS_ETOOBIG:
        return 413;
    case TPS_ENOTFOUND:
        return 404;
    case TPS_EBUSY:
        return 503;
    case TPS_ETIMEDOUT:
        return 408;
    default:
        return 500;
    }
}

int
tps_rc_end_op_status(enum tps_rc rc)
{
    switch (rc) {
    case TPS_OK:
        return CMN_TPS_STATUS_NO_ERROR;
    case TPS_ETIMEDOUT:
    case TPS_ECLOSED:
    case TPS_EIO:
        return CMN_TPS_STATUS_CONN_LOST;
    case TPS_ELOGIN:
        return CMN_TPS_STATUS_LOGIN;
    case TPS_EDB:
        return CMN_TPS_STATUS_DB;
    case TPS_EAUTH:
    case TPS_EBACKEND:
        return CMN_TPS_STATUS_SECURE_CHANNEL;
    case TPS_EPOLICY:
    case TPS_ECONFIG:
        return CMN_TPS_STATUS_MISCONFIGURATION;
    default:
        return CMN_TPS_STATUS_SNAC;
    }
}
