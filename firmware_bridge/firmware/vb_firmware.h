/* The portable firmware core: parser, dispatcher, watchdog, limit clamps, and the interface
 * to the motor drivers. A board port supplies a vb_motor_driver and a send function, feeds
 * received bytes to vb_fw_receive and calls vb_fw_tick about every millisecond.
 * Portable C99; no allocation. */
#ifndef VB_FIRMWARE_H
#define VB_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

#include "vb_protocol.h"

#define VB_FW_MAJOR 1u
#define VB_FW_MINOR 0u
#define VB_FW_PATCH 0u

/* After damping begins, how long the board waits for the host before it switches the torque
 * off by itself (a host that crashed or was killed never sends ENABLE 0). */
#define VB_DAMPING_HOLD_MS 1000u

typedef struct {
    void *ctx;
    /* Drive joint i: position target (rad, already clamped), gains, feed-forward torque
     * (N*m), torque limit (N*m): tau = kp (q - q_meas) - kd dq + tau_ff, clamped. */
    void (*command)(void *ctx, unsigned joint, float q, float kp, float kd, float tau_ff,
                    float tau_limit);
    /* Measured position (rad), velocity (rad/s), torque (N*m), temperature, error bits. */
    void (*read)(void *ctx, unsigned joint, float *q, float *dq, float *tau, uint8_t *temp_c,
                 uint8_t *errors);
    void (*enable)(void *ctx, int on);                    /* torque on/off, all motors */
    void (*imu)(void *ctx, float gyro[3], float gravity[3]); /* may be NULL */
    void (*update)(void *ctx, uint32_t now_us);            /* may be NULL */
    int (*estop)(void *ctx);                               /* may be NULL */
} vb_motor_driver;

typedef void (*vb_send_fn)(void *ctx, const uint8_t *data, size_t n);

typedef struct {
    uint8_t id;
    float pos_min, pos_max, vel_limit, tau_limit, damping_kd;
} vb_joint_config;

typedef struct {
    vb_motor_driver drv;
    vb_send_fn send;
    void *send_ctx;
    vb_parser parser;
    vb_joint_config joints[VB_MAX_JOINTS];
    uint8_t clamped[VB_MAX_JOINTS]; /* POS_LIMIT bits from the latest targets */
    unsigned n_joints;
    unsigned max_joints;
    uint16_t watchdog_ms;
    uint8_t flags;
    uint32_t now_us, last_command_us, last_host_us, damping_since_us;
    char board[6];
    /* counters */
    uint32_t rx_frames, tx_frames, nacks, watchdog_trips, faults, torque_offs;
    uint8_t tx[VB_MAX_FRAME];
} vb_firmware;

void vb_fw_init(vb_firmware *fw, const vb_motor_driver *drv, unsigned max_joints,
                vb_send_fn send, void *send_ctx, const char *board);

/* Bytes from the host; every complete frame is dispatched and answered at once. */
void vb_fw_receive(vb_firmware *fw, const uint8_t *data, size_t n, uint32_t now_us);

/* Housekeeping: motor update, watchdog, overspeed and e-stop checks. */
void vb_fw_tick(vb_firmware *fw, uint32_t now_us);

/* Enter damping now (kp = 0, kd = damping kd) and report `code` once. */
void vb_fw_damp(vb_firmware *fw, uint8_t code, uint8_t joint, int16_t value);

#endif
