/* libFuzzer target: arbitrary bytes through the parser and the firmware dispatcher.
 * A crash, a sanitizer report, or an accepted frame that does not re-encode to the same
 * CRC-checked bytes is a failure.  Build and run: make fuzz  (needs clang). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vb_firmware.h"
#include "vb_motor_sim.h"

static void sink(void *ctx, const uint8_t *data, size_t n) { (void)ctx; (void)data; (void)n; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static vb_parser p;
    vb_parser_init(&p);
    vb_frame f;
    size_t at = 0;
    while (at < size) {
        size_t chunk = size - at < 37 ? size - at : 37;
        at += vb_parser_push(&p, data + at, chunk);
        while (vb_parser_next(&p, &f)) {
            uint8_t again[VB_MAX_FRAME];
            size_t n = vb_encode_frame(again, f.seq, f.type, f.payload, f.len);
            if (vb_crc16(again + 2, n - 4) != vb_get_u16(again + n - 2) || f.len > VB_MAX_PAYLOAD)
                abort();
        }
    }
    /* the whole firmware on the same bytes, with simulated motors */
    static vb_motor_sim sim;
    static vb_firmware fw;
    vb_motor_sim_init(&sim, 12, NULL);
    vb_motor_driver drv = vb_motor_sim_driver(&sim);
    vb_fw_init(&fw, &drv, 12, sink, NULL, "fuzz");
    vb_fw_receive(&fw, data, size, 1000);
    vb_fw_tick(&fw, 500000);
    return 0;
}
