/* velora bridge protocol v1: framing, CRC, fixed-point fields, message layouts.
 * Portable C99, no allocation, no libc beyond <string.h>. See ../PROTOCOL.md. */
#ifndef VB_PROTOCOL_H
#define VB_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define VB_SYNC0 0xA5u
#define VB_SYNC1 0x5Au
#define VB_HEADER 6u          /* sync(2) len(2) seq type */
#define VB_OVERHEAD 8u        /* header + crc */
#define VB_MAX_PAYLOAD 512u
#define VB_MAX_FRAME (VB_MAX_PAYLOAD + VB_OVERHEAD)
#define VB_MAX_JOINTS 32u
#define VB_PROTOCOL_VERSION 1u

enum vb_type {
    VB_PING = 0x01, VB_CONFIGURE = 0x02, VB_ENABLE = 0x03, VB_SET_TARGETS = 0x04,
    VB_GET_STATE = 0x05,
    VB_INFO = 0x81, VB_ACK = 0x82, VB_STATE = 0x84, VB_FAULT = 0x86, VB_NACK = 0x8F
};

enum vb_flag {
    VB_FLAG_ENABLED = 1u << 0, VB_FLAG_DAMPING = 1u << 1, VB_FLAG_WATCHDOG = 1u << 2,
    VB_FLAG_CONFIGURED = 1u << 3, VB_FLAG_ESTOP = 1u << 4, VB_FLAG_FAULT = 1u << 5
};

enum vb_joint_error {
    VB_ERR_OVERTEMP = 1u << 0, VB_ERR_OVERCURRENT = 1u << 1, VB_ERR_POS_LIMIT = 1u << 2,
    VB_ERR_OVERSPEED = 1u << 3, VB_ERR_ENCODER = 1u << 4, VB_ERR_DRIVER = 1u << 5,
    VB_ERR_UNDERVOLTAGE = 1u << 6, VB_ERR_NO_RESPONSE = 1u << 7
};

/* Errors that mean a joint cannot be trusted; they set VB_FLAG_FAULT. */
#define VB_ERR_SERIOUS (VB_ERR_OVERTEMP | VB_ERR_OVERSPEED | VB_ERR_ENCODER | VB_ERR_DRIVER | \
                        VB_ERR_UNDERVOLTAGE | VB_ERR_NO_RESPONSE)

enum vb_fault_code {
    VB_FAULT_WATCHDOG = 1, VB_FAULT_OVERSPEED = 2, VB_FAULT_OVERTEMP = 3, VB_FAULT_ESTOP = 4,
    VB_FAULT_DRIVER = 5
};

enum vb_nack_reason {
    VB_NACK_BAD_LENGTH = 1, VB_NACK_UNKNOWN_TYPE = 2, VB_NACK_NOT_CONFIGURED = 3,
    VB_NACK_BAD_JOINT_COUNT = 4, VB_NACK_BAD_VALUE = 5, VB_NACK_NOT_ENABLED = 6
};

/* Fixed-point scales: value = raw * scale. */
#define VB_POS_SCALE 1e-4f
#define VB_VEL_SCALE 1e-3f
#define VB_TAU_SCALE 1e-2f
#define VB_KP_SCALE 0.1f
#define VB_KD_SCALE 1e-3f
#define VB_GYRO_SCALE 1e-3f
#define VB_GRAV_SCALE 1e-4f

#define VB_TARGET_BYTES 8u
#define VB_JOINT_STATE_BYTES 8u
#define VB_CONFIG_JOINT_BYTES 11u
#define VB_INFO_BYTES 14u

uint16_t vb_crc16(const uint8_t *data, size_t n);
uint16_t vb_crc16_update(uint16_t crc, const uint8_t *data, size_t n);

/* Write a whole frame into out (room for VB_OVERHEAD + len); returns its size. */
size_t vb_encode_frame(uint8_t *out, uint8_t seq, uint8_t type, const uint8_t *payload,
                       uint16_t len);

/* Little-endian field access. */
void vb_put_u16(uint8_t *p, uint16_t v);
void vb_put_i16(uint8_t *p, int16_t v);
void vb_put_u32(uint8_t *p, uint32_t v);
uint16_t vb_get_u16(const uint8_t *p);
int16_t vb_get_i16(const uint8_t *p);
uint32_t vb_get_u32(const uint8_t *p);

/* Saturating conversion of a physical value to a fixed-point field. */
int16_t vb_to_i16(float value, float scale);
uint16_t vb_to_u16(float value, float scale);

/* Stream parser: bytes in, whole checked frames out, resynchronizing after garbage.
 * Push received bytes, then call vb_parser_next until it returns 0. */
typedef struct {
    uint8_t seq, type;
    uint16_t len;
    const uint8_t *payload; /* valid until the next vb_parser_push */
} vb_frame;

#define VB_PARSER_CAPACITY (2u * VB_MAX_FRAME)

typedef struct {
    uint8_t buf[VB_PARSER_CAPACITY];
    size_t start, end;       /* held bytes are buf[start..end) */
    uint32_t frames;         /* good frames */
    uint32_t crc_errors;     /* frames whose CRC failed */
    uint32_t length_errors;  /* LEN above the maximum */
    uint32_t resyncs;        /* searches restarted inside a rejected frame */
    uint32_t discarded;      /* bytes dropped while looking for a sync */
} vb_parser;

void vb_parser_init(vb_parser *p);

/* Append up to n bytes; returns how many were taken (all of them whenever vb_parser_next
 * was called until it returned 0 and n <= VB_MAX_FRAME). */
size_t vb_parser_push(vb_parser *p, const uint8_t *data, size_t n);

/* Returns 1 and fills *frame with the next valid frame, 0 when more bytes are needed. */
int vb_parser_next(vb_parser *p, vb_frame *frame);

#endif
