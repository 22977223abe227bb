/* The portable firmware core (see vb_firmware.h and ../PROTOCOL.md). */
#include "vb_firmware.h"

#include <string.h>

static void reply(vb_firmware *fw, uint8_t seq, uint8_t type, const uint8_t *payload,
                  uint16_t len)
{
    size_t n = vb_encode_frame(fw->tx, seq, type, payload, len);
    fw->tx_frames++;
    fw->send(fw->send_ctx, fw->tx, n);
}

static void nack(vb_firmware *fw, uint8_t seq, uint8_t type, uint8_t reason)
{
    uint8_t p[2] = {type, reason};
    fw->nacks++;
    reply(fw, seq, VB_NACK, p, 2);
}

static void ack(vb_firmware *fw, uint8_t seq, uint8_t type)
{
    uint8_t p[2] = {type, 0};
    reply(fw, seq, VB_ACK, p, 2);
}

void vb_fw_init(vb_firmware *fw, const vb_motor_driver *drv, unsigned max_joints,
                vb_send_fn send, void *send_ctx, const char *board)
{
    memset(fw, 0, sizeof *fw);
    fw->drv = *drv;
    fw->send = send;
    fw->send_ctx = send_ctx;
    fw->max_joints = max_joints > VB_MAX_JOINTS ? VB_MAX_JOINTS : max_joints;
    fw->watchdog_ms = 100;
    vb_parser_init(&fw->parser);
    for (size_t i = 0; board && board[i] && i < sizeof fw->board; ++i)
        fw->board[i] = board[i];
}

static void send_info(vb_firmware *fw, uint8_t seq)
{
    uint8_t p[VB_INFO_BYTES] = {VB_PROTOCOL_VERSION, VB_FW_MAJOR, VB_FW_MINOR, VB_FW_PATCH,
                                (uint8_t)fw->max_joints, (uint8_t)fw->n_joints};
    vb_put_u16(p + 6, fw->watchdog_ms);
    memcpy(p + 8, fw->board, sizeof fw->board);
    reply(fw, seq, VB_INFO, p, VB_INFO_BYTES);
}

static void send_state(vb_firmware *fw, uint8_t seq)
{
    uint8_t p[18 + VB_JOINT_STATE_BYTES * VB_MAX_JOINTS];
    uint8_t flags = fw->flags;
    unsigned n = fw->n_joints;
    vb_put_u32(p, fw->now_us);
    p[5] = (uint8_t)n;
    for (unsigned j = 0; j < n; ++j) {
        float q = 0, dq = 0, tau = 0;
        uint8_t temp = 0, err = 0;
        fw->drv.read(fw->drv.ctx, j, &q, &dq, &tau, &temp, &err);
        err |= fw->clamped[j];
        if (err & VB_ERR_SERIOUS) flags |= VB_FLAG_FAULT;
        uint8_t *o = p + 6 + VB_JOINT_STATE_BYTES * j;
        vb_put_i16(o, vb_to_i16(q, VB_POS_SCALE));
        vb_put_i16(o + 2, vb_to_i16(dq, VB_VEL_SCALE));
        vb_put_i16(o + 4, vb_to_i16(tau, VB_TAU_SCALE));
        o[6] = temp;
        o[7] = err;
    }
    float gyro[3] = {0, 0, 0}, gravity[3] = {0, 0, -1};
    if (fw->drv.imu) fw->drv.imu(fw->drv.ctx, gyro, gravity);
    uint8_t *o = p + 6 + VB_JOINT_STATE_BYTES * n;
    for (int a = 0; a < 3; ++a) {
        vb_put_i16(o + 2 * a, vb_to_i16(gyro[a], VB_GYRO_SCALE));
        vb_put_i16(o + 6 + 2 * a, vb_to_i16(gravity[a], VB_GRAV_SCALE));
    }
    p[4] = flags;
    reply(fw, seq, VB_STATE, p, (uint16_t)(18 + VB_JOINT_STATE_BYTES * n));
}

/* Every joint: no stiffness, the damping kd, no feed-forward (where it stands). */
static void hold_damped(vb_firmware *fw)
{
    for (unsigned j = 0; j < fw->n_joints; ++j) {
        float q = 0, dq = 0, tau = 0;
        uint8_t temp = 0, err = 0;
        fw->drv.read(fw->drv.ctx, j, &q, &dq, &tau, &temp, &err);
        fw->drv.command(fw->drv.ctx, j, q, 0.0f, fw->joints[j].damping_kd, 0.0f,
                        fw->joints[j].tau_limit);
    }
}

void vb_fw_damp(vb_firmware *fw, uint8_t code, uint8_t joint, int16_t value)
{
    if (fw->flags & VB_FLAG_DAMPING) return;
    fw->flags |= VB_FLAG_DAMPING;
    fw->damping_since_us = fw->now_us;
    hold_damped(fw);
    uint8_t p[4] = {code, joint};
    vb_put_i16(p + 2, value);
    fw->faults++;
    reply(fw, 0, VB_FAULT, p, 4);
}

static void configure(vb_firmware *fw, const vb_frame *f)
{
    if (f->len < 3) { nack(fw, f->seq, f->type, VB_NACK_BAD_LENGTH); return; }
    unsigned n = f->payload[0];
    uint16_t watchdog = vb_get_u16(f->payload + 1);
    if (f->len != 3 + VB_CONFIG_JOINT_BYTES * n) {
        nack(fw, f->seq, f->type, VB_NACK_BAD_LENGTH);
        return;
    }
    if (n == 0 || n > fw->max_joints) {
        nack(fw, f->seq, f->type, VB_NACK_BAD_JOINT_COUNT);
        return;
    }
    vb_joint_config cfg[VB_MAX_JOINTS];
    for (unsigned j = 0; j < n; ++j) {
        const uint8_t *o = f->payload + 3 + VB_CONFIG_JOINT_BYTES * j;
        cfg[j].id = o[0];
        cfg[j].pos_min = vb_get_i16(o + 1) * VB_POS_SCALE;
        cfg[j].pos_max = vb_get_i16(o + 3) * VB_POS_SCALE;
        cfg[j].vel_limit = vb_get_u16(o + 5) * VB_VEL_SCALE;
        cfg[j].tau_limit = vb_get_u16(o + 7) * VB_TAU_SCALE;
        cfg[j].damping_kd = vb_get_u16(o + 9) * VB_KD_SCALE;
        if (!(cfg[j].pos_min < cfg[j].pos_max) || cfg[j].vel_limit <= 0 ||
            cfg[j].tau_limit <= 0 || watchdog == 0) {
            nack(fw, f->seq, f->type, VB_NACK_BAD_VALUE);
            return;
        }
    }
    fw->drv.enable(fw->drv.ctx, 0);
    memcpy(fw->joints, cfg, sizeof cfg[0] * n);
    memset(fw->clamped, 0, sizeof fw->clamped);
    fw->n_joints = n;
    fw->watchdog_ms = watchdog;
    fw->flags = VB_FLAG_CONFIGURED;
    ack(fw, f->seq, f->type);
}

static void enable(vb_firmware *fw, const vb_frame *f)
{
    if (f->len != 1 || f->payload[0] > 1) {
        nack(fw, f->seq, f->type, f->len != 1 ? VB_NACK_BAD_LENGTH : VB_NACK_BAD_VALUE);
        return;
    }
    if (!(fw->flags & VB_FLAG_CONFIGURED)) {
        nack(fw, f->seq, f->type, VB_NACK_NOT_CONFIGURED);
        return;
    }
    if (f->payload[0]) {
        if (fw->drv.estop && fw->drv.estop(fw->drv.ctx)) {
            nack(fw, f->seq, f->type, VB_NACK_BAD_VALUE); /* e-stop held: stay off */
            return;
        }
        /* Torque on, holding still (damping only) until the first targets arrive. */
        fw->flags = (uint8_t)((fw->flags | VB_FLAG_ENABLED) &
                              ~(VB_FLAG_DAMPING | VB_FLAG_WATCHDOG | VB_FLAG_ESTOP));
        hold_damped(fw);
        fw->drv.enable(fw->drv.ctx, 1);
        fw->last_command_us = fw->now_us;
    } else {
        fw->flags &= (uint8_t)~VB_FLAG_ENABLED;
        fw->drv.enable(fw->drv.ctx, 0);
    }
    ack(fw, f->seq, f->type);
}

static void set_targets(vb_firmware *fw, const vb_frame *f)
{
    if (!(fw->flags & VB_FLAG_CONFIGURED)) {
        nack(fw, f->seq, f->type, VB_NACK_NOT_CONFIGURED);
        return;
    }
    if (f->len != VB_TARGET_BYTES * fw->n_joints) {
        nack(fw, f->seq, f->type, VB_NACK_BAD_JOINT_COUNT);
        return;
    }
    if (!(fw->flags & VB_FLAG_ENABLED)) {
        nack(fw, f->seq, f->type, VB_NACK_NOT_ENABLED);
        return;
    }
    if (!(fw->flags & VB_FLAG_DAMPING)) { /* in damping, targets are answered, not applied */
        for (unsigned j = 0; j < fw->n_joints; ++j) {
            const uint8_t *o = f->payload + VB_TARGET_BYTES * j;
            const vb_joint_config *c = &fw->joints[j];
            float q = vb_get_i16(o) * VB_POS_SCALE;
            fw->clamped[j] = 0;
            if (q < c->pos_min) { q = c->pos_min; fw->clamped[j] = VB_ERR_POS_LIMIT; }
            if (q > c->pos_max) { q = c->pos_max; fw->clamped[j] = VB_ERR_POS_LIMIT; }
            fw->drv.command(fw->drv.ctx, j, q, vb_get_u16(o + 2) * VB_KP_SCALE,
                            vb_get_u16(o + 4) * VB_KD_SCALE, vb_get_i16(o + 6) * VB_TAU_SCALE,
                            c->tau_limit);
        }
        fw->last_command_us = fw->now_us;
    }
    send_state(fw, f->seq);
}

static void dispatch(vb_firmware *fw, const vb_frame *f)
{
    fw->rx_frames++;
    fw->last_host_us = fw->now_us;
    switch (f->type) {
    case VB_PING:
        if (f->len) nack(fw, f->seq, f->type, VB_NACK_BAD_LENGTH);
        else send_info(fw, f->seq);
        break;
    case VB_CONFIGURE: configure(fw, f); break;
    case VB_ENABLE: enable(fw, f); break;
    case VB_SET_TARGETS: set_targets(fw, f); break;
    case VB_GET_STATE:
        if (f->len) nack(fw, f->seq, f->type, VB_NACK_BAD_LENGTH);
        else send_state(fw, f->seq);
        break;
    default: nack(fw, f->seq, f->type, VB_NACK_UNKNOWN_TYPE); break;
    }
}

void vb_fw_receive(vb_firmware *fw, const uint8_t *data, size_t n, uint32_t now_us)
{
    vb_frame f;
    fw->now_us = now_us;
    while (n > 0) {
        size_t taken = vb_parser_push(&fw->parser, data, n);
        data += taken;
        n -= taken;
        while (vb_parser_next(&fw->parser, &f)) dispatch(fw, &f);
    }
}

void vb_fw_tick(vb_firmware *fw, uint32_t now_us)
{
    fw->now_us = now_us;
    if (fw->drv.update) fw->drv.update(fw->drv.ctx, now_us);
    if ((fw->flags & VB_FLAG_ENABLED) && (fw->flags & VB_FLAG_DAMPING)) {
        /* Damping with nobody talking: once the hold has passed since both the last frame
         * and the start of damping, torque off (a killed host never says ENABLE 0). */
        uint32_t hold = VB_DAMPING_HOLD_MS * 1000u;
        if ((uint32_t)(now_us - fw->last_host_us) > hold &&
            (uint32_t)(now_us - fw->damping_since_us) > hold) {
            fw->flags &= (uint8_t)~VB_FLAG_ENABLED;
            fw->drv.enable(fw->drv.ctx, 0);
            fw->torque_offs++;
        }
        return;
    }
    if (!(fw->flags & VB_FLAG_ENABLED)) return;
    if (fw->drv.estop && fw->drv.estop(fw->drv.ctx)) {
        fw->flags |= VB_FLAG_ESTOP;
        vb_fw_damp(fw, VB_FAULT_ESTOP, 255, 0);
        return;
    }
    if ((uint32_t)(now_us - fw->last_command_us) > (uint32_t)fw->watchdog_ms * 1000u) {
        fw->flags |= VB_FLAG_WATCHDOG;
        fw->watchdog_trips++;
        vb_fw_damp(fw, VB_FAULT_WATCHDOG, 255, (int16_t)(fw->watchdog_ms & 0x7FFF));
        return;
    }
    for (unsigned j = 0; j < fw->n_joints; ++j) {
        float q = 0, dq = 0, tau = 0;
        uint8_t temp = 0, err = 0;
        fw->drv.read(fw->drv.ctx, j, &q, &dq, &tau, &temp, &err);
        if (dq > fw->joints[j].vel_limit || -dq > fw->joints[j].vel_limit) {
            vb_fw_damp(fw, VB_FAULT_OVERSPEED, (uint8_t)j, vb_to_i16(dq, VB_VEL_SCALE));
            return;
        }
        if (err & (VB_ERR_OVERTEMP | VB_ERR_DRIVER)) {
            vb_fw_damp(fw, (err & VB_ERR_OVERTEMP) ? VB_FAULT_OVERTEMP : VB_FAULT_DRIVER,
                       (uint8_t)j, (int16_t)temp);
            return;
        }
    }
}
