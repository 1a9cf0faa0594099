/* gateway/gwerr.h - the one error enum of tpsgw, its strerror, and the two mappings that turn
 * an error into what a peer sees: an HTTP status (before the TPS exchange starts) and an
 * END_OP status code (tps-protocol §4.1/§4.2, once it has). */
#ifndef TPS_GWERR_H
#define TPS_GWERR_H

enum tps_rc {
    TPS_OK = 0,
    TPS_EINVAL = 1, /* bad argument: fix the caller */
    TPS_ENOMEM = 2,
    TPS_ECONFIG = 3,    /* configuration error; the message names file, line and key */
    TPS_EPROTO = 4,     /* the client broke the TPS protocol (framing, msg_type, pdu_size) */
    TPS_ETIMEDOUT = 5,  /* a read deadline passed */
    TPS_ECLOSED = 6,    /* the client closed the connection */
    TPS_EIO = 7,        /* socket or TLS error */
    TPS_ECARD = 8,      /* the card answered an unexpected status word */
    TPS_EAUTH = 9,      /* a cryptogram or MAC did not verify */
    TPS_ELOGIN = 10,    /* the user could not be authenticated */
    TPS_EBACKEND = 11,  /* TKS (or another backend) failed on every clone */
    TPS_EDB = 12,       /* token database error */
    TPS_EBUSY = 13,     /* too many live sessions / queue full */
    TPS_EMETHOD = 14,   /* HTTP method not allowed */
    TPS_EBADREQ = 15,   /* malformed HTTP request (not chunked, bad head) */
    TPS_ENOTFOUND = 16, /* no such URL / item */
    TPS_ECRYPTO = 17,   /* a crypto primitive failed */
    TPS_EUNSUPP = 18,   /* valid but not supported here */
    TPS_EPOLICY = 19,   /* refused by configuration or token policy (mapping, state) */
    TPS_ETOOBIG = 20,   /* a peer sent more than the configured cap */
    /* append only: the numbers appear in logs */
};

/* Returns a static, never-NULL description of rc. Thread-safe. */
const char *tps_strerror(enum tps_rc rc);

/* The one mapping from an error to an HTTP status, for failures before the response head
 * is sent (405, 400, 503, 404, 500 ...). TPS_OK gives 200. */
int tps_rc_http_status(enum tps_rc rc);

/* The END_OP status code (§4.1) for an error that no step gave a more specific code:
 * protocol errors 1, timeouts and lost connections 28, login 14, DB 15, secure channel 17,
 * policy 18, everything else 1. TPS_OK gives 0. */
int tps_rc_end_op_status(enum tps_rc rc);

#endif
