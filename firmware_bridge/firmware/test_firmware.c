/* Host unit tests of the firmware core: CRC, the golden frames (../golden_frames.json,
 * shared with the Python tests), resynchronization, the dispatcher, limit clamps, the
 * watchdog, and random bytes through the parser.
 *   build/test_firmware ../golden_frames.json */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_firmware.h"
#include "vb_motor_sim.h"

static int failures, checks;
#define CHECK(cond)                                                                   \
    do {                                                                              \
        ++checks;                                                                     \
        if (!(cond)) {                                                                \
            ++failures;                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

static char *golden;

/* The bytes of golden frame `name` (or of the stream for "stream"); returns the size. */
static size_t golden_bytes(const char *name, uint8_t *out, size_t cap)
{
    char key[96];
    const char *at;
    if (!strcmp(name, "stream")) {
        at = strstr(golden, "\"stream\"");
    } else {
        snprintf(key, sizeof key, "\"name\": \"%s\"", name);
        at = strstr(golden, key);
    }
    if (!at) return 0;
    at = strstr(at, "\"hex\": \"");
    if (!at) return 0;
    at += 8;
    size_t n = 0;
    while (at[0] != '"' && n < cap) {
        unsigned v;
        if (sscanf(at, "%2x", &v) != 1) return 0;
        out[n++] = (uint8_t)v;
        at += 2;
    }
    return n;
}

/* Captures what the firmware sends. */
static uint8_t sent[8192];
static size_t sent_n;
static void capture(void *ctx, const uint8_t *data, size_t n)
{
    (void)ctx;
    if (sent_n + n <= sizeof sent) {
        memcpy(sent + sent_n, data, n);
        sent_n += n;
    }
}

static int same_as_golden(const char *name)
{
    uint8_t g[VB_MAX_FRAME];
    size_t n = golden_bytes(name, g, sizeof g);
    int ok = n > 0 && n == sent_n && !memcmp(g, sent, n);
    if (!ok) {
        fprintf(stderr, "  %s: firmware sent", name);
        for (size_t i = 0; i < sent_n; ++i) fprintf(stderr, "%02x", sent[i]);
        fprintf(stderr, "\n");
    }
    return ok;
}

static void feed_golden(vb_firmware *fw, const char *name, uint32_t now_us)
{
    uint8_t g[VB_MAX_FRAME];
    size_t n = golden_bytes(name, g, sizeof g);
    CHECK(n > 0);
    sent_n = 0;
    vb_fw_receive(fw, g, n, now_us);
}

/* A driver whose readings are the golden STATE's values. */
static void fixed_read(void *ctx, unsigned j, float *q, float *dq, float *tau, uint8_t *temp,
                       uint8_t *err)
{
    static const float Q[2] = {0.1f, 1.0398f}, DQ[2] = {-0.5f, 2.25f},
                       TAU[2] = {12.34f, -56.78f};
    static const uint8_t T[2] = {31, 45}, ERR[2] = {0, VB_ERR_POS_LIMIT};
    (void)ctx;
    *q = Q[j];
    *dq = DQ[j];
    *tau = TAU[j];
    *temp = T[j];
    *err = ERR[j];
}
static float last_q[VB_MAX_JOINTS], last_kp[VB_MAX_JOINTS], last_kd[VB_MAX_JOINTS],
    last_ff[VB_MAX_JOINTS];
static void record_command(void *ctx, unsigned j, float q, float kp, float kd, float ff,
                           float limit)
{
    (void)ctx;
    (void)limit;
    last_q[j] = q;
    last_kp[j] = kp;
    last_kd[j] = kd;
    last_ff[j] = ff;
}
static void nothing(void *ctx, int on) { (void)ctx; (void)on; }
static void fixed_imu(void *ctx, float gyro[3], float gravity[3])
{
    (void)ctx;
    gyro[0] = 0.01f; gyro[1] = -0.02f; gyro[2] = 0.5f;
    gravity[0] = 0.0f; gravity[1] = 0.0f; gravity[2] = -1.0f;
}

static void test_crc(void)
{
    CHECK(vb_crc16((const uint8_t *)"123456789", 9) == 0x29B1);
}

static void test_golden_exchange(void)
{
    vb_motor_driver drv = {NULL, record_command, fixed_read, nothing, fixed_imu, NULL, NULL};
    vb_firmware fw;
    vb_fw_init(&fw, &drv, 12, capture, NULL, "vbemu");
    /* a board configured for 12 joints with a 100 ms watchdog answers PING with INFO */
    fw.n_joints = 12;
    fw.flags = VB_FLAG_CONFIGURED;
    feed_golden(&fw, "ping", 0);
    CHECK(same_as_golden("info"));
    feed_golden(&fw, "configure", 0);
    CHECK(same_as_golden("ack_configure"));
    CHECK(fw.n_joints == 2 && fw.watchdog_ms == 50);
    CHECK(fw.joints[1].id == 2 && fw.joints[1].pos_max > 2.2950f && fw.joints[1].pos_max < 2.2952f);
    CHECK(fw.joints[0].tau_limit > 144.39f && fw.joints[0].tau_limit < 144.41f);
    /* targets before ENABLE are refused; the golden NACK has seq 5 */
    uint8_t g[VB_MAX_FRAME], f[VB_MAX_FRAME];
    size_t n = golden_bytes("set_targets", g, sizeof g);
    size_t m = vb_encode_frame(f, 5, VB_SET_TARGETS, g + VB_HEADER, (uint16_t)(n - VB_OVERHEAD));
    sent_n = 0;
    vb_fw_receive(&fw, f, m, 0);
    CHECK(same_as_golden("nack_not_enabled"));
    feed_golden(&fw, "enable", 0);
    CHECK(sent_n == 10 && sent[5] == VB_ACK && sent[6] == VB_ENABLE);
    feed_golden(&fw, "set_targets", 123456);
    CHECK(same_as_golden("state"));
    CHECK(last_q[0] > 0.09999f && last_q[0] < 0.10001f && last_kp[1] == 500.0f);
    CHECK(last_kd[0] > 19.999f && last_kd[0] < 20.001f && last_ff[1] == -1.5f);
    /* no command for longer than the watchdog: damping and one FAULT */
    sent_n = 0;
    vb_fw_tick(&fw, 123456 + 50000);
    CHECK(sent_n == 0);
    vb_fw_tick(&fw, 123456 + 50001);
    CHECK(same_as_golden("fault_watchdog"));
    CHECK(fw.flags & VB_FLAG_DAMPING && fw.flags & VB_FLAG_WATCHDOG);
    CHECK(last_kp[0] == 0.0f && last_kd[0] > 1.99f && last_kd[0] < 2.01f);
    sent_n = 0;
    vb_fw_tick(&fw, 123456 + 90000);
    CHECK(sent_n == 0); /* reported once */
    /* the host stays silent: after the damping hold the board switches its torque off */
    vb_fw_tick(&fw, 123456 + 50001 + VB_DAMPING_HOLD_MS * 1000u);
    CHECK(fw.flags & VB_FLAG_ENABLED);
    vb_fw_tick(&fw, 123456 + 50002 + VB_DAMPING_HOLD_MS * 1000u);
    CHECK(!(fw.flags & VB_FLAG_ENABLED) && fw.torque_offs == 1);
}

static void test_stream_resync(void)
{
    uint8_t s[2048];
    size_t n = golden_bytes("stream", s, sizeof s);
    CHECK(n > 0);
    vb_parser p;
    vb_parser_init(&p);
    vb_frame f;
    uint8_t types[8];
    int got = 0;
    /* fed in uneven chunks, as a UART would deliver them */
    for (size_t i = 0; i < n;) {
        size_t chunk = (i * 7 + 3) % 13 + 1;
        if (chunk > n - i) chunk = n - i;
        vb_parser_push(&p, s + i, chunk);
        i += chunk;
        while (vb_parser_next(&p, &f) && got < 8) types[got++] = f.type;
    }
    CHECK(got == 3 && types[0] == VB_PING && types[1] == VB_ACK && types[2] == VB_FAULT);
    CHECK(p.crc_errors == 2 && p.length_errors == 1);
}

static void test_firmware_with_simulated_motors(void)
{
    vb_motor_sim sim;
    vb_motor_sim_init(&sim, 2, NULL);
    vb_motor_driver drv = vb_motor_sim_driver(&sim);
    vb_firmware fw;
    vb_fw_init(&fw, &drv, 2, capture, NULL, "vbemu");
    feed_golden(&fw, "configure", 0);
    feed_golden(&fw, "enable", 0);
    /* a target beyond the limit is clamped and flagged; the motor goes there */
    uint8_t payload[16], frame[64];
    for (int j = 0; j < 2; ++j) {
        vb_put_i16(payload + 8 * j, vb_to_i16(j ? 3.0f : 0.5f, VB_POS_SCALE));
        vb_put_u16(payload + 8 * j + 2, vb_to_u16(20.0f, VB_KP_SCALE));
        vb_put_u16(payload + 8 * j + 4, vb_to_u16(4.0f, VB_KD_SCALE));
        vb_put_i16(payload + 8 * j + 6, 0);
    }
    uint32_t t = 0;
    for (int k = 0; k < 200; ++k) { /* 2 s of 10 ms cycles with 1 ms ticks */
        size_t n = vb_encode_frame(frame, (uint8_t)k, VB_SET_TARGETS, payload, 16);
        sent_n = 0;
        vb_fw_receive(&fw, frame, n, t);
        for (int i = 0; i < 10; ++i) vb_fw_tick(&fw, t += 1000);
    }
    CHECK(!(fw.flags & VB_FLAG_DAMPING));
    CHECK(sim.j[0].q > 0.49f && sim.j[0].q < 0.51f);
    CHECK(sim.j[1].q > 2.2f && sim.j[1].q < 2.2952f); /* clamped at pos_max 2.2951 */
    CHECK(sent[5] == VB_STATE && (sent[6 + 6 + 8 + 7] & VB_ERR_POS_LIMIT));
    /* corrupted frames do not feed the watchdog */
    size_t n = vb_encode_frame(frame, 1, VB_SET_TARGETS, payload, 16);
    frame[10] ^= 1;
    for (int i = 0; i < 60; ++i) {
        vb_fw_receive(&fw, frame, n, t);
        vb_fw_tick(&fw, t += 1000);
    }
    CHECK(fw.flags & VB_FLAG_DAMPING && fw.watchdog_trips == 1);
    CHECK(fw.parser.crc_errors >= 60);
    /* ENABLE leaves damping */
    feed_golden(&fw, "enable", t);
    CHECK(!(fw.flags & VB_FLAG_DAMPING) && !(fw.flags & VB_FLAG_WATCHDOG));
    /* e-stop input: damping and a FAULT with code 4 */
    sim.estop = 1;
    sent_n = 0;
    vb_fw_tick(&fw, t += 1000);
    CHECK(fw.flags & VB_FLAG_ESTOP && sent[5] == VB_FAULT && sent[6] == VB_FAULT_ESTOP);
}

static void test_bad_requests_are_refused(void)
{
    vb_motor_sim sim;
    vb_motor_sim_init(&sim, 4, NULL);
    vb_motor_driver drv = vb_motor_sim_driver(&sim);
    vb_firmware fw;
    vb_fw_init(&fw, &drv, 4, capture, NULL, "vbemu");
    uint8_t frame[64], payload[40] = {0};
    size_t n = vb_encode_frame(frame, 9, VB_ENABLE, payload, 1); /* not configured */
    sent_n = 0;
    vb_fw_receive(&fw, frame, n, 0);
    CHECK(sent[5] == VB_NACK && sent[7] == VB_NACK_NOT_CONFIGURED);
    payload[0] = 5; /* more joints than the board has */
    vb_put_u16(payload + 1, 50);
    n = vb_encode_frame(frame, 9, VB_CONFIGURE, payload, 3 + 11 * 5 > 40 ? 3 : 3);
    sent_n = 0;
    vb_fw_receive(&fw, frame, n, 0);
    CHECK(sent[5] == VB_NACK && sent[7] == VB_NACK_BAD_LENGTH);
    n = vb_encode_frame(frame, 9, 0x42, payload, 0);
    sent_n = 0;
    vb_fw_receive(&fw, frame, n, 0);
    CHECK(sent[5] == VB_NACK && sent[7] == VB_NACK_UNKNOWN_TYPE);
    CHECK(fw.nacks == 3);
}

static void test_random_bytes_never_make_a_bad_frame(void)
{
    vb_parser p;
    vb_parser_init(&p);
    vb_frame f;
    uint32_t x = 12345;
    uint8_t buf[256];
    unsigned long accepted = 0;
    for (int round = 0; round < 20000; ++round) {
        for (size_t i = 0; i < sizeof buf; ++i) {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            /* plenty of sync bytes and small lengths so that frames get attempted */
            uint8_t b = (uint8_t)x;
            buf[i] = (x >> 8) % 5 == 0 ? VB_SYNC0 : (x >> 8) % 5 == 1 ? VB_SYNC1 : (x >> 8) % 5 == 2 ? (uint8_t)(b & 7) : b;
        }
        vb_parser_push(&p, buf, sizeof buf);
        while (vb_parser_next(&p, &f)) {
            uint8_t check[VB_MAX_FRAME];
            size_t n = vb_encode_frame(check, f.seq, f.type, f.payload, f.len);
            CHECK(n == (size_t)f.len + VB_OVERHEAD); /* it is a whole, checked frame */
            ++accepted;
        }
    }
    printf("  random bytes: %lu accepted frames (all CRC-valid), %lu CRC errors, %lu length "
           "errors\n", accepted, (unsigned long)p.crc_errors, (unsigned long)p.length_errors);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "../golden_frames.json";
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cannot open %s\n", path);
        return 2;
    }
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    golden = calloc((size_t)size + 1, 1);
    if (!golden || fread(golden, 1, (size_t)size, fp) != (size_t)size) return 2;
    fclose(fp);
    test_crc();
    test_golden_exchange();
    test_stream_resync();
    test_firmware_with_simulated_motors();
    test_bad_requests_are_refused();
    test_random_bytes_never_make_a_bad_frame();
    printf("%d checks, %d failed\n", checks, failures);
    free(golden);
    return failures ? 1 : 0;
}
