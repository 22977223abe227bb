/* A vb_motor_driver for the host: each joint is a rotor (inertia, viscous friction) driven
 * by the PD law the board's drivers run, integrated in steps of at most 100 us, with a
 * first-order temperature model. Injected error bits let tests fake driver faults. */
#ifndef VB_MOTOR_SIM_H
#define VB_MOTOR_SIM_H

#include <stdint.h>

#include "vb_firmware.h"

typedef struct {
    float q, dq, tau, temp_c;
    float target, kp, kd, tau_ff, tau_limit;
    uint8_t saturated, injected;
} vb_sim_joint;

typedef struct {
    vb_sim_joint j[VB_MAX_JOINTS];
    unsigned n;
    int enabled, estop;
    float inertia, friction;
    uint32_t last_us;
    int started;
} vb_motor_sim;

void vb_motor_sim_init(vb_motor_sim *sim, unsigned n, const float *q0);
vb_motor_driver vb_motor_sim_driver(vb_motor_sim *sim);

#endif
