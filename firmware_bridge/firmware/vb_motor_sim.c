/* Simulated motors for the host build (see vb_motor_sim.h). */
#include "vb_motor_sim.h"

#include <string.h>

#define STEP_US 100u

void vb_motor_sim_init(vb_motor_sim *sim, unsigned n, const float *q0)
{
    memset(sim, 0, sizeof *sim);
    sim->n = n > VB_MAX_JOINTS ? VB_MAX_JOINTS : n;
    sim->inertia = 0.2f;  /* about a reflected leg joint: kp 500, kd 20 is critically damped */
    sim->friction = 0.5f;
    for (unsigned i = 0; i < sim->n; ++i) {
        sim->j[i].q = sim->j[i].target = q0 ? q0[i] : 0.0f;
        sim->j[i].temp_c = 30.0f;
        sim->j[i].tau_limit = 1.0f;
    }
}

static void command(void *ctx, unsigned joint, float q, float kp, float kd, float tau_ff,
                    float tau_limit)
{
    vb_motor_sim *sim = ctx;
    if (joint >= sim->n) return;
    vb_sim_joint *m = &sim->j[joint];
    m->target = q;
    m->kp = kp;
    m->kd = kd;
    m->tau_ff = tau_ff;
    m->tau_limit = tau_limit;
}

static void read_joint(void *ctx, unsigned joint, float *q, float *dq, float *tau,
                       uint8_t *temp_c, uint8_t *errors)
{
    vb_motor_sim *sim = ctx;
    if (joint >= sim->n) return;
    const vb_sim_joint *m = &sim->j[joint];
    *q = m->q;
    *dq = m->dq;
    *tau = m->tau;
    *temp_c = (uint8_t)(m->temp_c < 0 ? 0 : m->temp_c > 255 ? 255 : m->temp_c);
    *errors = (uint8_t)((m->saturated ? VB_ERR_OVERCURRENT : 0) | m->injected |
                        (m->temp_c > 90.0f ? VB_ERR_OVERTEMP : 0));
}

static void enable(void *ctx, int on) { ((vb_motor_sim *)ctx)->enabled = on; }

static int estop(void *ctx) { return ((vb_motor_sim *)ctx)->estop; }

static void update(void *ctx, uint32_t now_us)
{
    vb_motor_sim *sim = ctx;
    if (!sim->started) {
        sim->started = 1;
        sim->last_us = now_us;
        return;
    }
    uint32_t elapsed = now_us - sim->last_us;
    if (elapsed > 100000u) elapsed = 100000u; /* a long pause is not simulated in full */
    sim->last_us = now_us;
    while (elapsed > 0) {
        uint32_t step = elapsed < STEP_US ? elapsed : STEP_US;
        float h = step * 1e-6f;
        elapsed -= step;
        for (unsigned i = 0; i < sim->n; ++i) {
            vb_sim_joint *m = &sim->j[i];
            float tau = 0.0f;
            m->saturated = 0;
            if (sim->enabled) {
                tau = m->kp * (m->target - m->q) - m->kd * m->dq + m->tau_ff;
                if (tau > m->tau_limit) { tau = m->tau_limit; m->saturated = 1; }
                if (tau < -m->tau_limit) { tau = -m->tau_limit; m->saturated = 1; }
            }
            m->tau = tau;
            /* semi-implicit Euler; friction treated implicitly for stability */
            m->dq = (m->dq + h * tau / sim->inertia) / (1.0f + h * sim->friction / sim->inertia);
            m->q += h * m->dq;
            m->temp_c += h * (0.02f * tau * tau - 0.01f * (m->temp_c - 30.0f));
        }
    }
}

vb_motor_driver vb_motor_sim_driver(vb_motor_sim *sim)
{
    vb_motor_driver d = {sim, command, read_joint, enable, NULL, update, estop};
    return d;
}
