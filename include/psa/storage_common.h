/* Types and flags shared by the PSA Protected Storage and Internal Trusted Storage APIs
 * (PSA Certified Secure Storage API 1.0). Plain C; no state. */
#ifndef PSA_STORAGE_COMMON_H
#define PSA_STORAGE_COMMON_H

#include <stddef.h>
#include <stdint.h>

typedef uint32_t psa_storage_create_flags_t;
typedef uint64_t psa_storage_uid_t;

#define PSA_STORAGE_FLAG_NONE 0u
#define PSA_STORAGE_FLAG_WRITE_ONCE (1u << 0)
#define PSA_STORAGE_FLAG_NO_CONFIDENTIALITY (1u << 1)
#define PSA_STORAGE_FLAG_NO_REPLAY_PROTECTION (1u << 2)

#define PSA_STORAGE_SUPPORT_SET_EXTENDED (1u << 0)

struct psa_storage_info_t {
  size_t capacity;                  /* allocated bytes */
  size_t size;                      /* bytes of data stored */
  psa_storage_create_flags_t flags; /* the flags given when the data was set or created */
};

#endif /* PSA_STORAGE_COMMON_H */
