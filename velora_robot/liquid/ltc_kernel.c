/* LTC inference kernel: the same semi-implicit fused Euler step as ltc_cell.py, over the
 * real synapse list (no padding), float32, no allocation. Built by kernel.py with the
 * system C compiler and loaded with ctypes; it needs nothing but libm.
 *
 *   v <- (cm_t v + gleak vleak + sum w s erev) / (cm_t + gleak + sum w s + eps)
 *   s = sigmoid(sigma (v_pre - mu)),  cm_t = cm * unfolds / dt
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int32_t n_neurons, n_motor, n_inputs, n_edges, n_sensory, unfolds;
    const int32_t *src, *rowptr;            /* inner synapses sorted by destination;
                                               rowptr (n_neurons + 1) as in CSR   */
    const float *w, *werev, *sigma, *bias;  /* softplus(w), w*erev, sigma, -sigma*mu */
    const int32_t *s_src, *s_rowptr;        /* sensory synapses, the same way     */
    const float *s_w, *s_werev, *s_sigma, *s_bias;
    const float *gleak, *leak, *cm;         /* softplus(gleak), gleak*vleak, softplus(cm) */
    const float *in_w, *in_b, *out_w, *out_b;
    const float *residual;                  /* (n_motor, n_inputs) or NULL        */
    float epsilon;
} ltc_model;

static void synaptic_sums(int n_rows, const int32_t *rowptr, const int32_t *src,
                          const float *w, const float *werev, const float *sigma,
                          const float *bias, const float *pre, float *act, float *num,
                          float *den) {
    const int n_edges = rowptr[n_rows];
    for (int e = 0; e < n_edges; e++)
        act[e] = 1.0f / (1.0f + expf(-(sigma[e] * pre[src[e]] + bias[e])));
    /* Synapses are sorted by destination: sum each row in registers (CSR). */
    for (int i = 0; i < n_rows; i++) {
        float sn = 0.0f, sd = 0.0f;
        for (int e = rowptr[i]; e < rowptr[i + 1]; e++) {
            sn += werev[e] * act[e];
            sd += w[e] * act[e];
        }
        num[i] = sn;
        den[i] = sd;
    }
}

/* x (B, T, F), dt (B, T) or NULL for dt_all, resets (B, T) or NULL, h (B, N) in/out,
 * y (B, T, M); scratch holds 5 * n_neurons + n_inputs + max(n_edges, n_sensory) floats.
 * Returns 0, or 1 when an input is not finite (h and y are then untouched
 * for that sample onward). */
int ltc_forward(const ltc_model *m, int32_t batch, int32_t steps, const float *x,
                const float *dt, float dt_all, const uint8_t *resets, float *h, float *y,
                float *scratch) {
    const int n = m->n_neurons, f = m->n_inputs, mo = m->n_motor;
    float *num = scratch, *den = num + n, *a = den + n, *d = a + n, *cm_t = d + n;
    float *xm = cm_t + n, *act = xm + f;
    for (int b = 0; b < batch; b++) {
        float *v = h + (int64_t)b * n;
        for (int t = 0; t < steps; t++) {
            const int64_t bt = (int64_t)b * steps + t;
            const float *xt = x + bt * f;
            for (int i = 0; i < f; i++) {
                if (!isfinite(xt[i])) return 1;
                xm[i] = xt[i] * m->in_w[i] + m->in_b[i];
            }
            if (resets && resets[bt]) memset(v, 0, sizeof(float) * n);
            const float scale = m->unfolds / (dt ? dt[bt] : dt_all);
            synaptic_sums(n, m->s_rowptr, m->s_src, m->s_w, m->s_werev, m->s_sigma,
                          m->s_bias, xm, act, num, den);
            for (int i = 0; i < n; i++) {
                cm_t[i] = m->cm[i] * scale;
                a[i] = m->leak[i] + num[i];
                d[i] = cm_t[i] + m->gleak[i] + den[i] + m->epsilon;
            }
            for (int u = 0; u < m->unfolds; u++) {
                synaptic_sums(n, m->rowptr, m->src, m->w, m->werev, m->sigma, m->bias, v,
                              act, num, den);
                for (int i = 0; i < n; i++)
                    v[i] = (cm_t[i] * v[i] + a[i] + num[i]) / (d[i] + den[i]);
            }
            float *yt = y + bt * mo;
            for (int k = 0; k < mo; k++) {
                float out = v[k] * m->out_w[k] + m->out_b[k];
                if (m->residual) {
                    const float *r = m->residual + (int64_t)k * f;
                    for (int i = 0; i < f; i++) out += r[i] * xt[i];
                }
                yt[k] = out;
            }
        }
    }
    return 0;
}
