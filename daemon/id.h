/* id.h — time-ordered unique ids (ULID: 48-bit ms timestamp, 80 random
 * bits, Crockford base32). Ids made by one process are strictly
 * increasing, even within one millisecond; ids from several processes sort
 * by time to the millisecond. */
#ifndef OMR_ID_H
#define OMR_ID_H

#include <stdint.h>

#include "omniroute/message.h"

/* Pure: format (ms, 10 random bytes) into out (OMR_ID_LEN + 1 bytes). */
void omr_id_format(uint64_t ms, const uint8_t rnd[10], char *out);
/* Parse back the timestamp; -1 if not a ULID. */
int64_t omr_id_time(const char *id);
/* A new id from the wall clock and getrandom(2). */
void omr_id_new(char *out);

#endif
