/* id.c — ULIDs: sortable by time, unique without coordination. The
 * process-wide monotonic state lives here (loop thread only). */
#include <string.h>
#include <sys/random.h>

#include "id.h"
#include "omniroute/timefmt.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void omr_id_format(uint64_t ms, const uint8_t rnd[10], char *out)
{
        uint8_t b[16];
        for (int i = 0; i < 6; i++)
                b[i] = (uint8_t)(ms >> (40 - 8 * i));
        memcpy(b + 6, rnd, 10);
        /* 128 bits as 26 base32 digits: the first digit holds 3 bits. */
        int bit = -2; /* 130 bits of output, the top 2 always zero */
        for (int i = 0; i < OMR_ID_LEN; i++) {
                unsigned v = 0;
                for (int k = 0; k < 5; k++, bit++) {
                        v <<= 1;
                        if (bit >= 0)
                                v |= (b[bit / 8] >> (7 - bit % 8)) & 1u;
                }
                out[i] = crockford[v];
        }
        out[OMR_ID_LEN] = '\0';
}

int64_t omr_id_time(const char *id)
{
        if (id == NULL || strlen(id) != OMR_ID_LEN)
                return -1;
        uint64_t t = 0;
        for (int i = 0; i < OMR_ID_LEN; i++) {
                const char *p = strchr(crockford, id[i]);
                if (id[i] == '\0' || p == NULL)
                        return -1;
                if (i < 10)
                        t = (t << 5) | (uint64_t)(p - crockford);
        }
        if (id[0] > '7') /* more than 128 bits */
                return -1;
        return (int64_t)(t & ((1ull << 48) - 1));
}

void omr_id_new(char *out)
{
        static uint64_t last_ms;
        static uint8_t last_rnd[10];
        uint64_t ms = (uint64_t)omr_now_ms();

        if (ms <= last_ms) {
                /* Same (or earlier: clock stepped back) millisecond: increment
                 * the random part so ids stay strictly increasing. */
                ms = last_ms;
                for (int i = 9; i >= 0 && ++last_rnd[i] == 0; i--)
                        ;
        } else {
                if (getrandom(last_rnd, sizeof(last_rnd), 0) != (ssize_t)sizeof(last_rnd))
                        memset(last_rnd, 0, sizeof(last_rnd));
                last_rnd[0] &= 0x7f; /* headroom for increments */
                last_ms = ms;
        }
        omr_id_format(ms, last_rnd, out);
}
