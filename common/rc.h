/* common/rc.h - the one error enum of common/, and its strerror. */
#ifndef CMN_RC_H
#define CMN_RC_H

enum cmn_rc {
    CMN_OK = 0,
    CMN_EINVAL = 1,     /* bad argument, or input that breaks the format */
    CMN_ENOMEM = 2,     /* allocation failed */
    CMN_ETOOBIG = 3,    /* input or output larger than the configured cap */
    CMN_ESHORT = 4,     /* input ended before the item was complete */
    CMN_EPROTO = 5,     /* peer broke the protocol (HTTP, TPS message, APDU) */
    CMN_EIO = 6,        /* read/write failed; errno or the detail says why */
    CMN_ETIMEDOUT = 7,  /* a deadline passed */
    CMN_ECLOSED = 8,    /* peer closed the connection */
    CMN_ECRYPTO = 9,    /* a crypto primitive failed (OpenSSL error queue in the detail) */
    CMN_EAUTH = 10,     /* MAC or cryptogram did not verify */
    CMN_ENOTFOUND = 11, /* looked-up item (config key, object, tag) is absent */
    CMN_ECONFIG = 12,   /* configuration error; the message names file, line and key */
    CMN_ECARD = 13,     /* card answered with an unexpected status word */
    CMN_EUNSUPP = 14,   /* valid but not supported here (algorithm, protocol option) */
    /* append only: the numbers are part of the log format */
};

/* Returns a static, never-NULL description of rc. Thread-safe. */
const char *cmn_strerror(enum cmn_rc rc);

#endif
