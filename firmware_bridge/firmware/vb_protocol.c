/* velora bridge protocol v1: framing, CRC and the resynchronizing parser. */
#include "vb_protocol.h"

#include <string.h>

uint16_t vb_crc16_update(uint16_t crc, const uint8_t *data, size_t n)
{
    /* CRC-16/CCITT-FALSE: poly 0x1021, MSB first. */
    for (size_t i = 0; i < n; ++i) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (int b = 0; b < 8; ++b)
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
    return crc;
}

uint16_t vb_crc16(const uint8_t *data, size_t n) { return vb_crc16_update(0xFFFFu, data, n); }

void vb_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

void vb_put_i16(uint8_t *p, int16_t v) { vb_put_u16(p, (uint16_t)v); }

void vb_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        p[i] = (uint8_t)((v >> (8 * i)) & 0xFFu);
}

uint16_t vb_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | ((uint16_t)p[1] << 8)); }

int16_t vb_get_i16(const uint8_t *p)
{
    uint16_t u = vb_get_u16(p);
    return (int16_t)(u >= 0x8000u ? (int32_t)u - 0x10000 : (int32_t)u);
}

uint32_t vb_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static long vb_round(float x) { return (long)(x < 0.0f ? x - 0.5f : x + 0.5f); }

int16_t vb_to_i16(float value, float scale)
{
    float raw = value / scale;
    if (!(raw == raw)) return 0; /* NaN */
    if (raw >= 32767.0f) return 32767;
    if (raw <= -32768.0f) return -32768;
    return (int16_t)vb_round(raw);
}

uint16_t vb_to_u16(float value, float scale)
{
    float raw = value / scale;
    if (!(raw == raw) || raw <= 0.0f) return 0;
    if (raw >= 65535.0f) return 65535;
    return (uint16_t)vb_round(raw);
}

size_t vb_encode_frame(uint8_t *out, uint8_t seq, uint8_t type, const uint8_t *payload,
                       uint16_t len)
{
    out[0] = VB_SYNC0;
    out[1] = VB_SYNC1;
    vb_put_u16(out + 2, len);
    out[4] = seq;
    out[5] = type;
    if (len) memmove(out + VB_HEADER, payload, len);
    vb_put_u16(out + VB_HEADER + len, vb_crc16(out + 2, (size_t)len + 4u));
    return (size_t)len + VB_OVERHEAD;
}

void vb_parser_init(vb_parser *p) { memset(p, 0, sizeof *p); }

size_t vb_parser_push(vb_parser *p, const uint8_t *data, size_t n)
{
    if (p->start > 0) { /* keep the held bytes at the front */
        memmove(p->buf, p->buf + p->start, p->end - p->start);
        p->end -= p->start;
        p->start = 0;
    }
    size_t room = VB_PARSER_CAPACITY - p->end;
    if (n > room) n = room;
    memcpy(p->buf + p->end, data, n);
    p->end += n;
    return n;
}

int vb_parser_next(vb_parser *p, vb_frame *frame)
{
    for (;;) {
        size_t held = p->end - p->start;
        const uint8_t *b = p->buf + p->start;
        if (held == 0) return 0;
        if (b[0] != VB_SYNC0) {
            p->start++;
            p->discarded++;
            continue;
        }
        if (held < 2) return 0;
        if (b[1] != VB_SYNC1) {
            p->start++;
            p->discarded++;
            continue;
        }
        if (held < VB_HEADER) return 0;
        uint16_t len = vb_get_u16(b + 2);
        if (len > VB_MAX_PAYLOAD) {
            p->length_errors++;
            p->resyncs++;
            p->start++; /* search again from the byte after this sync */
            continue;
        }
        size_t size = (size_t)len + VB_OVERHEAD;
        if (held < size) return 0;
        if (vb_crc16(b + 2, (size_t)len + 4u) != vb_get_u16(b + VB_HEADER + len)) {
            p->crc_errors++;
            p->resyncs++;
            p->start++;
            continue;
        }
        frame->len = len;
        frame->seq = b[4];
        frame->type = b[5];
        frame->payload = b + VB_HEADER;
        p->start += size;
        p->frames++;
        return 1;
    }
}
