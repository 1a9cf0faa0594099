/* gateway/xmlmini.h - a small, strict, bounded XML reader for the flat answers of the Dogtag CA
 * (backends §4.1, §4.5; R-11): elements, text and the five predefined entities, nothing else.
 *
 * What it accepts: an optional UTF-8 BOM, an XML declaration / processing instructions and
 * comments before and after one root element; elements with attributes (skipped); leaf text
 * with &lt; &gt; &amp; &quot; &apos; &#N; &#xN;. What it refuses: DOCTYPE (no DTD, no custom
 * entities), CDATA, comments or PIs inside the root, text next to child elements (mixed
 * content), unbalanced or mismatched tags, control bytes, more than TPS_XML_MAX_NODES elements,
 * deeper than TPS_XML_MAX_DEPTH, names longer than TPS_XML_MAX_NAME, documents larger than
 * TPS_XML_MAX_DOC. */
#ifndef TPS_XMLMINI_H
#define TPS_XMLMINI_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/gwerr.h"

#define TPS_XML_MAX_NODES 512
#define TPS_XML_MAX_DEPTH 16
#define TPS_XML_MAX_NAME 64
#define TPS_XML_MAX_DOC (1024 * 1024)

/* One element. Strings point into the parsed document (borrowed: valid while it is). */
struct tps_xml_node {
    int parent;         /* index of the parent element, -1 for the root */
    unsigned depth;     /* 0 for the root */
    unsigned children;  /* number of child elements */
    const char *name;   /* element name, not NUL-terminated */
    size_t name_len;
    const char *text;   /* raw content of a leaf (entities not decoded); "" when it has children */
    size_t text_len;
};

/* A parsed document: elements in document order (a parent always precedes its children).
 * Large (~30 KiB): allocate it on the heap. Owned by the caller; nothing to free inside. */
struct tps_xml {
    struct tps_xml_node node[TPS_XML_MAX_NODES];
    size_t count;
    char err[160];      /* why parsing failed ("line 3: </b> closes <a>"), "" on success */
};

/* Parses doc[0..len). [out] x (its previous contents are dropped). doc is borrowed by x for
 * as long as x is used. Returns TPS_OK, TPS_EPROTO (not well-formed or refused: x->err says
 * where and why), TPS_ETOOBIG (len > TPS_XML_MAX_DOC, too many elements, too deep).
 * Thread-safe (no global state). */
enum tps_rc tps_xml_parse(struct tps_xml *x, const char *doc, size_t len);

/* Index of the first child of element `parent` named `name` that comes after index `after`
 * (pass -1 to start at the first child); -1 when there is none. parent -1 looks at the root
 * itself. Names compare exactly (case-sensitive). */
int tps_xml_child(const struct tps_xml *x, int parent, const char *name, int after);

/* Index of the element reached from the root by a '/'-separated path whose first segment
 * names the root ("XMLResponse/Requests/Request"), taking the first match at each level;
 * -1 when absent. */
int tps_xml_path(const struct tps_xml *x, const char *path);

/* Counts the children of `parent` named `name`. */
unsigned tps_xml_count(const struct tps_xml *x, int parent, const char *name);

/* Decodes the text of leaf element idx (entities resolved, UTF-8) into out[0..cap) with a
 * terminating NUL. [out] *out_len (may be NULL) = bytes without the NUL. TPS_EINVAL (idx out
 * of range), TPS_EPROTO (the element has children, or a bad character reference),
 * TPS_ETOOBIG (cap too small; out is then ""). */
enum tps_rc tps_xml_text(const struct tps_xml *x, int idx, char *out, size_t cap,
                         size_t *out_len);

/* True when element idx exists, is a leaf and its name equals `name`. */
bool tps_xml_is(const struct tps_xml *x, int idx, const char *name);

#endif
