/* LTC training kernel: a whole sequence of LTC steps, ODE unfolds, output map and the
 * parameters' positivity maps included, forward and hand-written backward (adjoint), for the
 * custom autograd function in fused.py. The same semi-implicit Euler step as ltc_cell.py:
 *
 *   v <- (cm_t v + a + num(v)) / (d + den(v))
 *   num_i = sum_e werev_e s_e,  den_i = sum_e w_e s_e,  s_e = sigmoid(sigma_e v_src(e) + bias_e)
 *   a = leak + num_sensory(xm),  d = cm_t + gleak + den_sensory(xm) + eps,  cm_t = cm * scale
 *   xm = x * in_w + in_b,  scale = unfolds / dt,  y = v_motor * out_w + out_b + residual x
 *   w = softplus(w_raw), werev = w erev, bias = -sigma mu, gleak = softplus(gleak_raw),
 *   leak = gleak vleak, cm = softplus(cm_raw)
 *
 * Inner arrays are batch-innermost, (..., B) with B contiguous, so each synapse is one SIMD
 * loop over the batch; x, y, h0 and h keep torch's (B, ...) layout. Single-threaded and in a
 * fixed order: the same inputs give the same bits. Built by kernel.py with the system C
 * compiler; needs nothing but libm.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define CHUNK 16  /* batch lanes summed in registers at a time: one AVX-512 vector */

typedef struct {
    int32_t n_neurons, n_inputs, n_motor, n_edges, n_sensory, unfolds, batch, steps;
    int32_t tape_steps;  /* steps or 1: a forward without backward keeps one step's tape */
    const int32_t *src, *dst, *s_src, *s_dst;  /* synapses sorted by destination */
    const int32_t *rowptr, *s_rowptr;          /* (N + 1): row i is [rowptr[i], rowptr[i+1]) */
    const float *erev, *s_erev;
    float epsilon;
} ltc_shape;

typedef struct {  /* the cell's raw parameters, or their gradients (same layout) */
    float *gleak, *vleak, *cm;                   /* (N)                              */
    float *w, *sigma, *mu;                       /* inner synapses (E)               */
    float *s_w, *s_sigma, *s_mu;                 /* sensory synapses (Es)            */
    float *in_w, *in_b, *out_w, *out_b;          /* (F), (F), (M), (M)               */
    float *residual;                             /* (M, F) or NULL                   */
} ltc_params;

/* Effective parameters, derived once per call: 4 (E + Es) + 3 N floats. */
typedef struct {
    float *w, *werev, *sigma, *bias, *s_w, *s_werev, *s_sigma, *s_bias, *gleak, *leak, *cm;
} ltc_effective;

static ltc_effective effective_layout(const ltc_shape *s, float *buf) {
    const int E = s->n_edges, Es = s->n_sensory, N = s->n_neurons;
    ltc_effective q;
    q.w = buf; q.werev = q.w + E; q.sigma = q.werev + E; q.bias = q.sigma + E;
    q.s_w = q.bias + E; q.s_werev = q.s_w + Es; q.s_sigma = q.s_werev + Es;
    q.s_bias = q.s_sigma + Es; q.gleak = q.s_bias + Es; q.leak = q.gleak + N;
    q.cm = q.leak + N;
    return q;
}

/* torch's softplus (threshold 20) and its derivative */
static float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
static float softplus_grad(float x) { return x > 20.0f ? 1.0f : 1.0f / (1.0f + expf(-x)); }

static void derive(const ltc_shape *s, const ltc_params *p, const ltc_effective *q) {
    for (int e = 0; e < s->n_edges; e++) {
        q->w[e] = softplus(p->w[e]);
        q->werev[e] = q->w[e] * s->erev[e];
        q->sigma[e] = p->sigma[e];
        q->bias[e] = -p->sigma[e] * p->mu[e];
    }
    for (int e = 0; e < s->n_sensory; e++) {
        q->s_w[e] = softplus(p->s_w[e]);
        q->s_werev[e] = q->s_w[e] * s->s_erev[e];
        q->s_sigma[e] = p->s_sigma[e];
        q->s_bias[e] = -p->s_sigma[e] * p->s_mu[e];
    }
    for (int i = 0; i < s->n_neurons; i++) {
        q->gleak[i] = softplus(p->gleak[i]);
        q->leak[i] = q->gleak[i] * p->vleak[i];
        q->cm[i] = softplus(p->cm[i]);
    }
}

/* exp on [-87, 88] by range reduction and a degree-6 polynomial (relative error < 2e-7);
 * written out so the compiler vectorizes the batch loops that call it. */
static inline float fast_expf(float x) {
    x = x < -87.0f ? -87.0f : x;  /* not fminf/fmaxf: those do not vectorize */
    x = x > 88.0f ? 88.0f : x;
    const float n = floorf(x * 1.44269504088896341f + 0.5f);
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sigmoidf(float z) { return 1.0f / (1.0f + fast_expf(-z)); }

/* act (E, B) = sigmoid(sigma (pre_src - mu)) of every synapse, from pre (P, B). */
static void activations(int n_edges, const int32_t *src, const float *sigma,
                        const float *bias, const float *pre, int B, float *act) {
    for (int e = 0; e < n_edges; e++) {
        const float *p = pre + (int64_t)src[e] * B;
        float *a = act + (int64_t)e * B;
        const float sg = sigma[e], bi = bias[e];
#pragma omp simd
        for (int b = 0; b < B; b++) a[b] = sigmoidf(sg * p[b] + bi);
    }
}

/* num/den (N, B) = synapse sums over `pre` (P, B), through act (E, B). Synapses are sorted
 * by destination (rowptr as in CSR), so each neuron's sums stay in registers: written to
 * memory once per neuron, not read and written once per synapse (measured 2x faster). */
static void synapses_forward(int n_rows, const int32_t *rowptr, const int32_t *src,
                             const float *w, const float *werev, const float *sigma,
                             const float *bias, const float *pre, int B, float *act,
                             float *num, float *den) {
    activations(rowptr[n_rows], src, sigma, bias, pre, B, act);
    for (int i = 0; i < n_rows; i++) {
        float *nu = num + (int64_t)i * B, *de = den + (int64_t)i * B;
        const int e0 = rowptr[i], e1 = rowptr[i + 1];
        int b0 = 0;
        for (; b0 + CHUNK <= B; b0 += CHUNK) {  /* one vector register per sum */
            float sn[CHUNK] = {0.0f}, sd[CHUNK] = {0.0f};
            for (int e = e0; e < e1; e++) {
                const float *a = act + (int64_t)e * B + b0, we = werev[e], ww = w[e];
#pragma omp simd
                for (int j = 0; j < CHUNK; j++) {
                    sn[j] += we * a[j];
                    sd[j] += ww * a[j];
                }
            }
            memcpy(nu + b0, sn, sizeof sn);
            memcpy(de + b0, sd, sizeof sd);
        }
        for (int b = b0; b < B; b++) {
            float sn = 0.0f, sd = 0.0f;
            for (int e = e0; e < e1; e++) {
                sn += werev[e] * act[(int64_t)e * B + b];
                sd += w[e] * act[(int64_t)e * B + b];
            }
            nu[b] = sn;
            de[b] = sd;
        }
    }
}

/* Adjoint of synapses_forward: gnum/gden (N, B) are the gradients of num/den; accumulates the
 * effective synapse parameters' gradients and gpre (P, B). */
static void synapses_backward(int n_edges, const int32_t *src, const int32_t *dst,
                              const float *w, const float *werev, const float *sigma,
                              const float *pre, const float *act, const float *gnum,
                              const float *gden, int B, float *gw, float *gwerev,
                              float *gsigma, float *gbias, float *gpre) {
    for (int e = 0; e < n_edges; e++) {
        const float *p = pre + (int64_t)src[e] * B, *a = act + (int64_t)e * B;
        const float *gn = gnum + (int64_t)dst[e] * B, *gd = gden + (int64_t)dst[e] * B;
        float *gp = gpre + (int64_t)src[e] * B;
        const float sg = sigma[e], we = werev[e], ww = w[e];
        float s_gwerev = 0.0f, s_gw = 0.0f, s_gsigma = 0.0f, s_gbias = 0.0f;
#pragma omp simd reduction(+ : s_gwerev, s_gw, s_gsigma, s_gbias)
        for (int b = 0; b < B; b++) {
            const float s = a[b];
            s_gwerev += gn[b] * s;
            s_gw += gd[b] * s;
            const float dz = (gn[b] * we + gd[b] * ww) * s * (1.0f - s);
            s_gsigma += dz * p[b];
            s_gbias += dz;
            gp[b] += dz * sg;
        }
        gwerev[e] += s_gwerev;
        gw[e] += s_gw;
        gsigma[e] += s_gsigma;
        gbias[e] += s_gbias;
    }
}

/* xr (F, B) = x[:, t] transposed and xm (F, B) = xr * in_w + in_b, from x (B, T, F). */
static void input_map(const ltc_shape *s, const ltc_params *p, const float *x, int t,
                      float *xr, float *xm) {
    const int F = s->n_inputs, B = s->batch, T = s->steps;
    for (int b = 0; b < B; b++) {
        const float *xt = x + ((int64_t)b * T + t) * F;
        for (int f = 0; f < F; f++) xr[(int64_t)f * B + b] = xt[f];
    }
    for (int f = 0; f < F; f++)
#pragma omp simd
        for (int b = 0; b < B; b++)
            xm[(int64_t)f * B + b] = xr[(int64_t)f * B + b] * p->in_w[f] + p->in_b[f];
}

/* Sizes of the tape and scratch for ltc_train_forward / ltc_train_backward, in floats.
 * The tape keeps each unfold's state and denominator; the backward recomputes the synapse
 * activations from the states (measured no slower than keeping them, which at batch 64
 * were 0.4 MB a step and tripled the tape). */
int64_t ltc_tape_size(const ltc_shape *s) {
    const int64_t NB = (int64_t)s->n_neurons * s->batch, U = s->unfolds;
    return 4 * (int64_t)(s->n_edges + s->n_sensory) + 3 * (int64_t)s->n_neurons +
           s->tape_steps * (2 * U + 1) * NB;
}

int64_t ltc_scratch_size(const ltc_shape *s) {
    const int64_t NB = (int64_t)s->n_neurons * s->batch, FB = (int64_t)s->n_inputs * s->batch;
    const int64_t MB = (int64_t)s->n_motor * s->batch;
    const int64_t EB = (int64_t)(s->n_edges > s->n_sensory ? s->n_edges : s->n_sensory) *
                       s->batch;
    return 7 * NB + 3 * FB + MB + EB + 4 * (int64_t)(s->n_edges + s->n_sensory) +
           3 * s->n_neurons;
}

typedef struct { float *v, *den; } tape_step;  /* den: d + den(v) of each unfold */

static tape_step tape_at(const ltc_shape *s, float *tape, int t) {
    const int64_t NB = (int64_t)s->n_neurons * s->batch, U = s->unfolds;
    const int64_t k = s->tape_steps > 1 ? t : 0;
    float *base = tape + 4 * (int64_t)(s->n_edges + s->n_sensory) + 3 * (int64_t)s->n_neurons;
    tape_step r;
    r.v = base + k * (U + 1) * NB;
    r.den = base + s->tape_steps * (U + 1) * NB + k * U * NB;
    return r;
}

/* x (B, T, F); scale (T, B); keep (T, B) or NULL (0 resets the state before that step);
 * h0 (B, N). Writes y (B, T, M), states (T, N, B) or NULL, h (B, N). Returns 1 (and writes
 * nothing) when x holds NaN or inf, else 0. */
int ltc_train_forward(const ltc_shape *s, const ltc_params *p, const float *x,
                      const float *scale, const float *keep, const float *h0, float *y,
                      float *states, float *h, float *tape, float *scratch) {
    const int N = s->n_neurons, F = s->n_inputs, M = s->n_motor, E = s->n_edges;
    const int Es = s->n_sensory, U = s->unfolds, B = s->batch, T = s->steps;
    const int64_t NB = (int64_t)N * B;
    for (int64_t k = 0; k < (int64_t)B * T * F; k++)
        if (!isfinite(x[k])) return 1;
    const ltc_effective q = effective_layout(s, tape);
    derive(s, p, &q);
    float *num = scratch, *den = num + NB, *a = den + NB, *d = a + NB, *prev = d + NB;
    float *xr = prev + NB, *xm = xr + (int64_t)F * B, *yt = xm + (int64_t)F * B;
    float *act = yt + (int64_t)M * B;
    for (int i = 0; i < N; i++)
        for (int b = 0; b < B; b++) prev[(int64_t)i * B + b] = h0[(int64_t)b * N + i];
    for (int t = 0; t < T; t++) {
        const float *sc = scale + (int64_t)t * B;
        const tape_step ts = tape_at(s, tape, t);
        float *v = ts.v;
        if (keep) {
            const float *k = keep + (int64_t)t * B;
            for (int i = 0; i < N; i++)
                for (int b = 0; b < B; b++) v[i * B + b] = prev[i * B + b] * k[b];
        } else {
            memcpy(v, prev, sizeof(float) * NB);
        }
        input_map(s, p, x, t, xr, xm);
        synapses_forward(N, s->s_rowptr, s->s_src, q.s_w, q.s_werev, q.s_sigma, q.s_bias, xm, B,
                         act, num, den);
        for (int i = 0; i < N; i++)
            for (int b = 0; b < B; b++) {
                const int64_t k = (int64_t)i * B + b;
                a[k] = q.leak[i] + num[k];
                d[k] = q.cm[i] * sc[b] + q.gleak[i] + den[k] + s->epsilon;
            }
        for (int u = 0; u < U; u++) {
            const float *vin = v + u * NB;
            float *vout = v + (u + 1) * NB, *dn = ts.den + u * NB;
            synapses_forward(N, s->rowptr, s->src, q.w, q.werev, q.sigma, q.bias, vin, B, act,
                             num, den);
            for (int i = 0; i < N; i++)
#pragma omp simd
                for (int b = 0; b < B; b++) {
                    const int64_t k = (int64_t)i * B + b;
                    dn[k] = d[k] + den[k];
                    vout[k] = (q.cm[i] * sc[b] * vin[k] + a[k] + num[k]) / dn[k];
                }
        }
        const float *vt = v + U * NB;
        memcpy(prev, vt, sizeof(float) * NB);
        if (states) memcpy(states + t * NB, vt, sizeof(float) * NB);
        for (int k = 0; k < M; k++) {
            float *yk = yt + (int64_t)k * B;
            const float *vk = vt + (int64_t)k * B;
            for (int b = 0; b < B; b++) yk[b] = vk[b] * p->out_w[k] + p->out_b[k];
            if (p->residual)
                for (int f = 0; f < F; f++) {
                    const float r = p->residual[(int64_t)k * F + f], *xf = xr + (int64_t)f * B;
#pragma omp simd
                    for (int b = 0; b < B; b++) yk[b] += r * xf[b];
                }
        }
        for (int b = 0; b < B; b++)
            for (int k = 0; k < M; k++)
                y[((int64_t)b * T + t) * M + k] = yt[(int64_t)k * B + b];
    }
    for (int i = 0; i < N; i++)
        for (int b = 0; b < B; b++) h[(int64_t)b * N + i] = prev[(int64_t)i * B + b];
    return 0;
}

/* Gradients of the loss for y (B, T, M), states (T, N, B) and h (B, N), each NULL when it
 * does not matter. Writes gx (B, T, F) and gh0 (B, N); accumulates the raw parameter
 * gradients into g (zeroed by the caller). Needs the tape of a forward with
 * tape_steps == steps. */
void ltc_train_backward(const ltc_shape *s, const ltc_params *p, const float *x,
                        const float *scale, const float *keep, const float *tape,
                        const float *gy, const float *gstates, const float *gh, float *gx,
                        float *gh0, ltc_params *g, float *scratch) {
    const int N = s->n_neurons, F = s->n_inputs, M = s->n_motor, E = s->n_edges;
    const int Es = s->n_sensory, U = s->unfolds, B = s->batch, T = s->steps;
    const int64_t NB = (int64_t)N * B;
    const ltc_effective q = effective_layout(s, (float *)tape);
    float *gv = scratch, *gnew = gv + NB, *gN = gnew + NB, *gD = gN + NB, *ga = gD + NB,
          *gd = ga + NB, *gcm = gd + NB, *xr = gcm + NB, *xm = xr + (int64_t)F * B,
          *gxm = xm + (int64_t)F * B, *gyt = gxm + (int64_t)F * B, *act = gyt + (int64_t)M * B;
    const ltc_effective gq = effective_layout(
        s, act + (int64_t)(E > Es ? E : Es) * B);
    memset(gq.w, 0, sizeof(float) * (4 * (size_t)(E + Es) + 3 * (size_t)N));
    memset(gx, 0, sizeof(float) * (size_t)B * T * F);
    memset(gv, 0, sizeof(float) * NB);
    if (gh)
        for (int i = 0; i < N; i++)
            for (int b = 0; b < B; b++) gv[(int64_t)i * B + b] = gh[(int64_t)b * N + i];
    for (int t = T - 1; t >= 0; t--) {
        const float *sc = scale + (int64_t)t * B;
        const tape_step ts = tape_at(s, (float *)tape, t);
        const float *v = ts.v, *vt = v + U * NB;
        if (gstates)
            for (int64_t k = 0; k < NB; k++) gv[k] += gstates[t * NB + k];
        input_map(s, p, x, t, xr, xm);
        memset(gxm, 0, sizeof(float) * F * B);  /* gradient of xr until the input map */
        if (gy) {  /* y = v_motor * out_w + out_b + residual x */
            for (int b = 0; b < B; b++)
                for (int k = 0; k < M; k++)
                    gyt[(int64_t)k * B + b] = gy[((int64_t)b * T + t) * M + k];
            for (int k = 0; k < M; k++) {
                const float *gk = gyt + (int64_t)k * B, *vk = vt + (int64_t)k * B;
                float s_w = 0.0f, s_b = 0.0f;
                for (int b = 0; b < B; b++) {
                    gv[(int64_t)k * B + b] += gk[b] * p->out_w[k];
                    s_w += gk[b] * vk[b];
                    s_b += gk[b];
                }
                g->out_w[k] += s_w;
                g->out_b[k] += s_b;
                if (p->residual)
                    for (int f = 0; f < F; f++) {
                        const float r = p->residual[(int64_t)k * F + f];
                        const float *xf = xr + (int64_t)f * B;
                        float *gf = gxm + (int64_t)f * B, s_r = 0.0f;
#pragma omp simd reduction(+ : s_r)
                        for (int b = 0; b < B; b++) {
                            s_r += gk[b] * xf[b];
                            gf[b] += gk[b] * r;
                        }
                        g->residual[(int64_t)k * F + f] += s_r;
                    }
            }
            for (int b = 0; b < B; b++)  /* the residual's part of gx */
                for (int f = 0; f < F; f++)
                    gx[((int64_t)b * T + t) * F + f] = gxm[(int64_t)f * B + b];
            memset(gxm, 0, sizeof(float) * F * B);
        }
        memset(ga, 0, sizeof(float) * 3 * NB);  /* ga, gd, gcm: gradients of a, d, cm_t */
        for (int u = U - 1; u >= 0; u--) {
            const float *vin = v + u * NB, *vout = v + (u + 1) * NB, *dn = ts.den + u * NB;
            for (int i = 0; i < N; i++)
#pragma omp simd
                for (int b = 0; b < B; b++) {
                    const int64_t k = (int64_t)i * B + b;
                    const float gn = gv[k] / dn[k];
                    gN[k] = gn;
                    gD[k] = -gn * vout[k];
                    gcm[k] += gn * vin[k];
                    ga[k] += gn;
                    gd[k] += gD[k];
                    gnew[k] = gn * q.cm[i] * sc[b];
                }
            activations(E, s->src, q.sigma, q.bias, vin, B, act);
            synapses_backward(E, s->src, s->dst, q.w, q.werev, q.sigma, vin, act, gN, gD, B,
                              gq.w, gq.werev,
                              gq.sigma, gq.bias, gnew);
            memcpy(gv, gnew, sizeof(float) * NB);
        }
        /* the step's constants: a = leak + num_s, d = cm_t + gleak + den_s + eps */
        for (int i = 0; i < N; i++) {
            float s_leak = 0.0f, s_gleak = 0.0f, s_cm = 0.0f;
            for (int b = 0; b < B; b++) {
                const int64_t k = (int64_t)i * B + b;
                s_leak += ga[k];
                s_gleak += gd[k];
                s_cm += (gcm[k] + gd[k]) * sc[b];
            }
            gq.leak[i] += s_leak;
            gq.gleak[i] += s_gleak;
            gq.cm[i] += s_cm;
        }
        activations(Es, s->s_src, q.s_sigma, q.s_bias, xm, B, act);
        synapses_backward(Es, s->s_src, s->s_dst, q.s_w, q.s_werev, q.s_sigma, xm, act,
                          ga, gd, B, gq.s_w, gq.s_werev, gq.s_sigma, gq.s_bias, gxm);
        for (int f = 0; f < F; f++) {
            const float *gm = gxm + (int64_t)f * B, *xf = xr + (int64_t)f * B;
            float s_w = 0.0f, s_b = 0.0f;
#pragma omp simd reduction(+ : s_w, s_b)
            for (int b = 0; b < B; b++) {
                s_w += gm[b] * xf[b];
                s_b += gm[b];
            }
            g->in_w[f] += s_w;
            g->in_b[f] += s_b;
        }
        for (int b = 0; b < B; b++)
            for (int f = 0; f < F; f++)
                gx[((int64_t)b * T + t) * F + f] += gxm[(int64_t)f * B + b] * p->in_w[f];
        if (keep) {
            const float *k = keep + (int64_t)t * B;
            for (int i = 0; i < N; i++)
                for (int b = 0; b < B; b++) gv[i * B + b] *= k[b];
        }
    }
    for (int i = 0; i < N; i++)
        for (int b = 0; b < B; b++) gh0[(int64_t)b * N + i] = gv[(int64_t)i * B + b];
    /* effective -> raw parameters */
    for (int e = 0; e < E; e++) {
        g->w[e] += (gq.w[e] + gq.werev[e] * s->erev[e]) * softplus_grad(p->w[e]);
        g->sigma[e] += gq.sigma[e] - gq.bias[e] * p->mu[e];
        g->mu[e] += -gq.bias[e] * p->sigma[e];
    }
    for (int e = 0; e < Es; e++) {
        g->s_w[e] += (gq.s_w[e] + gq.s_werev[e] * s->s_erev[e]) * softplus_grad(p->s_w[e]);
        g->s_sigma[e] += gq.s_sigma[e] - gq.s_bias[e] * p->s_mu[e];
        g->s_mu[e] += -gq.s_bias[e] * p->s_sigma[e];
    }
    for (int i = 0; i < N; i++) {
        g->gleak[i] += (gq.gleak[i] + gq.leak[i] * p->vleak[i]) * softplus_grad(p->gleak[i]);
        g->vleak[i] += gq.leak[i] * q.gleak[i];
        g->cm[i] += gq.cm[i] * softplus_grad(p->cm[i]);
    }
}

/* ---------------------------------------------------------------- threads
 * The batch split into contiguous parts, one per thread, each run by the functions above
 * as a batch of its own (samples never interact). Parameter gradients are summed over the
 * parts in part order, so a given thread count always gives the same bits. */
#define MAX_THREADS 64

static int part_begin(int B, int parts, int i) {
    /* boundaries on multiples of CHUNK where the batch allows, so each part keeps whole
     * vectors */
    const int chunks = (B + CHUNK - 1) / CHUNK;
    const int b = (int)((int64_t)chunks * i / parts) * CHUNK;
    return b < B ? b : B;
}

static int params_count(const ltc_shape *s, int residual) {
    return 3 * s->n_neurons + 3 * s->n_edges + 3 * s->n_sensory + 2 * s->n_inputs +
           2 * s->n_motor + (residual ? s->n_motor * s->n_inputs : 0);
}

static ltc_params params_at(const ltc_shape *s, float *buf, int residual) {
    const int N = s->n_neurons, E = s->n_edges, Es = s->n_sensory, F = s->n_inputs;
    const int M = s->n_motor;
    ltc_params q;
    q.gleak = buf; q.vleak = q.gleak + N; q.cm = q.vleak + N;
    q.w = q.cm + N; q.sigma = q.w + E; q.mu = q.sigma + E;
    q.s_w = q.mu + E; q.s_sigma = q.s_w + Es; q.s_mu = q.s_sigma + Es;
    q.in_w = q.s_mu + Es; q.in_b = q.in_w + F; q.out_w = q.in_b + F; q.out_b = q.out_w + M;
    q.residual = residual ? q.out_b + M : NULL;
    return q;
}

static void params_add(const ltc_shape *s, const ltc_params *dst, const ltc_params *src) {
    const int N = s->n_neurons, E = s->n_edges, Es = s->n_sensory, F = s->n_inputs;
    const int M = s->n_motor;
    float *d[] = {dst->gleak, dst->vleak, dst->cm, dst->w, dst->sigma, dst->mu, dst->s_w,
                  dst->s_sigma, dst->s_mu, dst->in_w, dst->in_b, dst->out_w, dst->out_b,
                  dst->residual};
    const float *a[] = {src->gleak, src->vleak, src->cm, src->w, src->sigma, src->mu,
                        src->s_w, src->s_sigma, src->s_mu, src->in_w, src->in_b, src->out_w,
                        src->out_b, src->residual};
    const int n[] = {N, N, N, E, E, E, Es, Es, Es, F, F, M, M, M * F};
    for (int k = 0; k < 14; k++)
        if (d[k])
            for (int i = 0; i < n[k]; i++) d[k][i] += a[k][i];
}

static ltc_shape part_shape(const ltc_shape *s, int B) {
    ltc_shape p = *s;
    p.batch = B;
    return p;
}

/* Floats of tape and scratch for a batch run on `threads` parts. */
int64_t ltc_tape_size_threads(const ltc_shape *s, int threads) {
    int64_t total = 0;
    for (int i = 0; i < threads; i++) {
        ltc_shape p = part_shape(s, part_begin(s->batch, threads, i + 1) -
                                        part_begin(s->batch, threads, i));
        total += ltc_tape_size(&p);
    }
    return total;
}

int64_t ltc_scratch_size_threads(const ltc_shape *s, int threads, int residual) {
    if (threads == 1) return ltc_scratch_size(s);
    int64_t total = 0;
    for (int i = 0; i < threads; i++) {
        const int B = part_begin(s->batch, threads, i + 1) - part_begin(s->batch, threads, i);
        ltc_shape p = part_shape(s, B);
        /* own scratch, scale and keep (T, B_i), states or their gradients (T, N, B_i),
         * parameter gradients */
        total += ltc_scratch_size(&p) + 2 * (int64_t)s->steps * B +
                 (int64_t)s->steps * s->n_neurons * B + params_count(s, residual);
    }
    return total;
}

typedef struct {
    ltc_shape shape;
    const ltc_params *p;
    ltc_params g;  /* this part's parameter gradients (backward) */
    const float *x, *scale, *keep, *h0, *tape, *gy, *gstates, *gh;
    float *y, *states, *h, *tape_out, *scratch, *gx, *gh0;
    int status, backward;
} part_job;

static void *run_part(void *arg) {
    part_job *j = arg;
    if (j->backward)
        ltc_train_backward(&j->shape, j->p, j->x, j->scale, j->keep, j->tape, j->gy,
                           j->gstates, j->gh, j->gx, j->gh0, &j->g, j->scratch);
    else
        j->status = ltc_train_forward(&j->shape, j->p, j->x, j->scale, j->keep, j->h0, j->y,
                                      j->states, j->h, j->tape_out, j->scratch);
    return NULL;
}

/* Copy the columns [b0, b0 + Bi) of rows (R, B) into (R, Bi), or back. */
static void columns(int rows, int B, int b0, int Bi, const float *src, float *dst, int back) {
    for (int r = 0; r < rows; r++)
        if (back) memcpy((float *)dst + (int64_t)r * B + b0, src + (int64_t)r * Bi,
                         sizeof(float) * Bi);
        else memcpy(dst + (int64_t)r * Bi, src + (int64_t)r * B + b0, sizeof(float) * Bi);
}

/* ltc_train_forward / ltc_train_backward on `threads` threads (1: the call itself). The
 * tape and scratch are sized by the *_threads functions for the same thread count. */
static int run_threads(const ltc_shape *s, const ltc_params *p, const float *x,
                       const float *scale, const float *keep, const float *h0, float *y,
                       float *states, float *h, const float *gy, const float *gstates,
                       const float *gh, float *gx, float *gh0, ltc_params *g, float *tape,
                       float *scratch, int threads, int backward) {
    const int N = s->n_neurons, F = s->n_inputs, M = s->n_motor, T = s->steps, B = s->batch;
    const int residual = p->residual != NULL;
    part_job jobs[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    float *tape_at_i = tape, *scr = scratch;
    for (int i = 0; i < threads; i++) {
        const int b0 = part_begin(B, threads, i), Bi = part_begin(B, threads, i + 1) - b0;
        part_job *j = &jobs[i];
        memset(j, 0, sizeof *j);
        j->shape = part_shape(s, Bi);
        j->p = p;
        j->backward = backward;
        j->x = x + (int64_t)b0 * T * F;
        j->h0 = h0 ? h0 + (int64_t)b0 * N : NULL;
        j->y = y ? y + (int64_t)b0 * T * M : NULL;
        j->h = h ? h + (int64_t)b0 * N : NULL;
        j->gy = gy ? gy + (int64_t)b0 * T * M : NULL;
        j->gh = gh ? gh + (int64_t)b0 * N : NULL;
        j->gx = gx ? gx + (int64_t)b0 * T * F : NULL;
        j->gh0 = gh0 ? gh0 + (int64_t)b0 * N : NULL;
        j->tape = j->tape_out = tape_at_i;
        tape_at_i += ltc_tape_size(&j->shape);
        j->scratch = scr;
        scr += ltc_scratch_size(&j->shape);
        float *sc = scr, *kp = sc + (int64_t)T * Bi, *st = kp + (int64_t)T * Bi;
        float *gbuf = st + (int64_t)T * N * Bi;
        scr = gbuf + params_count(s, residual);
        columns(T, B, b0, Bi, scale, sc, 0);
        j->scale = sc;
        if (keep) {
            columns(T, B, b0, Bi, keep, kp, 0);
            j->keep = kp;
        }
        if (backward) {
            if (gstates) {
                columns(T * N, B, b0, Bi, gstates, st, 0);
                j->gstates = st;
            }
            memset(gbuf, 0, sizeof(float) * params_count(s, residual));
            j->g = params_at(s, gbuf, residual);
        } else if (states) {
            j->states = st;
        }
        pthread_create(&ids[i], NULL, run_part, j);
    }
    int status = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        status |= jobs[i].status;
    }
    for (int i = 0; i < threads; i++) {  /* in part order: the same bits every time */
        const int b0 = part_begin(B, threads, i), Bi = jobs[i].shape.batch;
        if (backward) params_add(s, g, &jobs[i].g);
        else if (states) columns(T * N, B, b0, Bi, jobs[i].states, states, 1);
    }
    return status;
}

int ltc_forward_threads(const ltc_shape *s, const ltc_params *p, const float *x,
                        const float *scale, const float *keep, const float *h0, float *y,
                        float *states, float *h, float *tape, float *scratch, int threads) {
    if (threads <= 1)
        return ltc_train_forward(s, p, x, scale, keep, h0, y, states, h, tape, scratch);
    return run_threads(s, p, x, scale, keep, h0, y, states, h, NULL, NULL, NULL, NULL, NULL,
                       NULL, tape, scratch, threads, 0);
}

void ltc_backward_threads(const ltc_shape *s, const ltc_params *p, const float *x,
                          const float *scale, const float *keep, const float *tape,
                          const float *gy, const float *gstates, const float *gh, float *gx,
                          float *gh0, ltc_params *g, float *scratch, int threads) {
    if (threads <= 1) {
        ltc_train_backward(s, p, x, scale, keep, tape, gy, gstates, gh, gx, gh0, g, scratch);
        return;
    }
    run_threads(s, p, x, scale, keep, NULL, NULL, NULL, NULL, gy, gstates, gh, gx, gh0, g,
                (float *)tape, scratch, threads, 1);
}
