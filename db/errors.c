/* db/errors.c - error messages and the library version. */
#include "strata.h"

const char *strata_strerror(int rc) {
    switch (rc) {
    case STRATA_OK:        return "success";
    case STRATA_NOTFOUND:  return "not found";
    case STRATA_EINVAL:    return "invalid argument";
    case STRATA_ENOMEM:    return "out of memory";
    case STRATA_EIO:       return "I/O error reported by the operating system";
    case STRATA_ECORRUPT:  return "database file is corrupt (checksum or structure mismatch)";
    case STRATA_EBADTXN:   return "transaction is unusable (an earlier call in it failed, or it ended)";
    case STRATA_EPANIC:    return "a commit failed after its header write; the database must be reopened";
    case STRATA_EBUSY:     return "busy: the write lock is held, or the file is open by another handle";
    case STRATA_ETYPE:     return "table exists with another key type or table kind";
    case STRATA_EREADONLY: return "write attempted in a read transaction or on a read-only database";
    case STRATA_ENOSPC:    return "no space left on the device, or the map size is exhausted";
    case STRATA_EEXIST:    return "already exists";
    case STRATA_EVERSION:  return "file format version not supported by this library";
    case STRATA_ETOOBIG:   return "key or value too large";
    case STRATA_ENOCMP:    return "the table's comparator is not registered";
    default:               return "unknown error code";
    }
}

int strata_version_number(void) { return STRATA_VERSION_NUMBER; }
