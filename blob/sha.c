/* blob/sha.c - SHA-256 through OpenSSL libcrypto's EVP interface: one-shot
 * hashes of chunks. Streaming hashes (whole content) use EVP_MD_CTX directly
 * in writer.c and reader.c. Invariant: (1) a libcrypto failure is reported as
 * STRATA_ENOMEM (EVP fails only on allocation for SHA-256). */
#include <openssl/evp.h>

#include "blob_int.h"

int blob_sha256(const void *data, size_t len, uint8_t out[SHA_LEN]) {
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != SHA_LEN) return STRATA_ENOMEM;
    return STRATA_OK;
}
