/* Host emulator: the firmware core on a pseudo-terminal, with simulated motors, the wire
 * time of a UART at the configured baud rate, and fault injection.
 *
 *   vb_emulator [--baud N] [--joints N] [--link PATH] [--board NAME] [--seed N]
 *               [--pose Q1,Q2,...]   (where the simulated joints start, rad)
 *               [--plant-fd IN,OUT]  (sim-plant mode: the motors are an external plant)
 *               [--spin]             (poll without sleeping: lowest latency, one busy core)
 *
 * Prints "READY <pty path>" on stdout once the port is open. Commands on stdin, one per
 * line (each answered with one line on stdout):
 *   drop N            do not send the next N replies
 *   corrupt N         flip one payload bit in each of the next N replies
 *   delay MS N        send the next N replies MS milliseconds late
 *   stall MS          neither read nor write for MS (the firmware keeps running)
 *   garbage N         send N random bytes
 *   disconnect MS     close the port; after MS open a new one (the link follows)
 *   joint-error J B   report error bits B on joint J (0 clears)
 *   estop 0|1         the board's e-stop input
 *   stats             a JSON line of counters and firmware state
 *   quit
 * Sim-plant mode: instead of the built-in motor model, every firmware tick (1 ms) sends the
 * plant (over the pipe OUT) the time and each joint's command, and reads back the joints'
 * position, velocity and torque and the IMU (pipe IN). velora_robot.bridge.plant runs the
 * simulated robot in MuJoCo at the other end, so the motors are the robot's joints.
 *   to plant:   'S', u32 time us, u8 enabled, n x f32 (target, kp, kd, tau_ff, tau_limit)
 *   from plant: n x f32 (q, dq, tau), f32 gyro[3], f32 gravity[3]
 * A byte takes 10 bit times (8N1): a frame from the host reaches the firmware when its
 * last byte would have arrived; a reply is written when its last byte would have left. */
#define _GNU_SOURCE /* ppoll, posix_openpt, cfmakeraw */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "vb_firmware.h"
#include "vb_motor_sim.h"

#define TXQ 64

typedef struct {
    uint8_t data[VB_MAX_FRAME];
    size_t n;
    uint64_t due_ns;
} tx_item;

static struct {
    int master, slave_keep;
    char link[512], slave_name[256];
    uint64_t byte_ns;
    /* host -> firmware bytes in flight */
    uint8_t rx[4096];
    size_t rx_n;
    uint64_t rx_due_ns, rx_busy_ns;
    /* firmware -> host frames in flight */
    tx_item txq[TXQ];
    unsigned tx_head, tx_count;
    uint64_t tx_busy_ns;
    /* faults */
    unsigned drop, corrupt, delay_n;
    uint64_t delay_ns, stall_until_ns, reconnect_at_ns;
    unsigned long dropped, corrupted, delayed, garbage_bytes, disconnects, overflows;
    unsigned long rx_bytes, tx_bytes;
    uint32_t rng;
    vb_firmware fw;
    vb_motor_sim sim;
} E;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t rnd(void)
{
    E.rng ^= E.rng << 13;
    E.rng ^= E.rng >> 17;
    E.rng ^= E.rng << 5;
    return E.rng;
}

static void enqueue(const uint8_t *data, size_t n, uint64_t extra_ns)
{
    if (E.tx_count == TXQ) {
        E.overflows++;
        return;
    }
    uint64_t now = now_ns();
    uint64_t start = E.tx_busy_ns > now ? E.tx_busy_ns : now;
    tx_item *it = &E.txq[(E.tx_head + E.tx_count++) % TXQ];
    memcpy(it->data, data, n);
    it->n = n;
    it->due_ns = start + n * E.byte_ns + extra_ns;
    E.tx_busy_ns = start + n * E.byte_ns;
}

/* The firmware's send function: where replies meet the injected faults. */
static void send_frame(void *ctx, const uint8_t *data, size_t n)
{
    (void)ctx;
    if (E.drop) {
        E.drop--;
        E.dropped++;
        return;
    }
    uint8_t copy[VB_MAX_FRAME];
    memcpy(copy, data, n);
    if (E.corrupt) {
        E.corrupt--;
        E.corrupted++;
        size_t at = VB_HEADER + (n > VB_OVERHEAD ? rnd() % (n - VB_OVERHEAD) : 0);
        copy[at < n - 2 ? at : 2] ^= (uint8_t)(1u << (rnd() % 8));
    }
    uint64_t extra = 0;
    if (E.delay_n) {
        E.delay_n--;
        E.delayed++;
        extra = E.delay_ns;
    }
    enqueue(copy, n, extra);
}

static int open_port(void)
{
    E.master = posix_openpt(O_RDWR | O_NOCTTY);
    if (E.master < 0 || grantpt(E.master) || unlockpt(E.master)) return -1;
    const char *name = ptsname(E.master);
    if (!name) return -1;
    snprintf(E.slave_name, sizeof E.slave_name, "%s", name);
    /* Keep the slave open ourselves so the master never sees a hang-up between host
     * connections, and make it raw (no line discipline). */
    E.slave_keep = open(E.slave_name, O_RDWR | O_NOCTTY);
    if (E.slave_keep < 0) return -1;
    struct termios t;
    tcgetattr(E.slave_keep, &t);
    cfmakeraw(&t);
    tcsetattr(E.slave_keep, TCSANOW, &t);
    fcntl(E.master, F_SETFL, O_NONBLOCK);
    if (E.link[0]) {
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp", E.link);
        unlink(tmp);
        if (symlink(E.slave_name, tmp) || rename(tmp, E.link)) return -1;
    }
    return 0;
}

static void close_port(void)
{
    if (E.master >= 0) close(E.master);
    if (E.slave_keep >= 0) close(E.slave_keep);
    E.master = E.slave_keep = -1;
    E.rx_n = 0;
    E.tx_count = 0;
}

static void print_stats(void)
{
    const vb_parser *p = &E.fw.parser;
    printf("{\"rx_bytes\": %lu, \"tx_bytes\": %lu, \"fw_rx_frames\": %lu, "
           "\"fw_tx_frames\": %lu, \"fw_crc_errors\": %lu, \"fw_length_errors\": %lu, "
           "\"fw_resyncs\": %lu, \"fw_discarded\": %lu, \"nacks\": %lu, "
           "\"watchdog_trips\": %lu, \"faults\": %lu, \"dropped\": %lu, \"corrupted\": %lu, "
           "\"delayed\": %lu, \"garbage_bytes\": %lu, \"disconnects\": %lu, "
           "\"overflows\": %lu, \"flags\": %u, \"n_joints\": %u, \"enabled\": %d, \"torque_offs\": %lu, "
           "\"time_us\": %lu}\n",
           E.rx_bytes, E.tx_bytes, (unsigned long)E.fw.rx_frames,
           (unsigned long)E.fw.tx_frames, (unsigned long)p->crc_errors,
           (unsigned long)p->length_errors, (unsigned long)p->resyncs,
           (unsigned long)p->discarded, (unsigned long)E.fw.nacks,
           (unsigned long)E.fw.watchdog_trips, (unsigned long)E.fw.faults, E.dropped,
           E.corrupted, E.delayed, E.garbage_bytes, E.disconnects, E.overflows,
           (unsigned)E.fw.flags, E.fw.n_joints, E.sim.enabled, (unsigned long)E.fw.torque_offs,
           (unsigned long)E.fw.now_us);
}

/* One command line from stdin; returns 0 to quit. */
static int command(char *line)
{
    char word[32] = {0};
    long a = 0, b = 0;
    int got = sscanf(line, "%31s %ld %ld", word, &a, &b);
    uint64_t now = now_ns();
    if (got < 1) return 1;
    if (!strcmp(word, "quit")) return 0;
    if (!strcmp(word, "drop") && got >= 2) E.drop += (unsigned)a;
    else if (!strcmp(word, "corrupt") && got >= 2) E.corrupt += (unsigned)a;
    else if (!strcmp(word, "delay") && got >= 3) {
        E.delay_ns = (uint64_t)a * 1000000ull;
        E.delay_n += (unsigned)b;
    } else if (!strcmp(word, "stall") && got >= 2) E.stall_until_ns = now + (uint64_t)a * 1000000ull;
    else if (!strcmp(word, "garbage") && got >= 2) {
        uint8_t junk[VB_MAX_FRAME];
        size_t n = (size_t)a > sizeof junk ? sizeof junk : (size_t)a;
        for (size_t i = 0; i < n; ++i) junk[i] = (uint8_t)rnd();
        E.garbage_bytes += n;
        enqueue(junk, n, 0);
    } else if (!strcmp(word, "disconnect") && got >= 2) {
        close_port();
        E.disconnects++;
        E.reconnect_at_ns = now + (uint64_t)a * 1000000ull;
    } else if (!strcmp(word, "joint-error") && got >= 3 && a >= 0 && a < (long)E.sim.n)
        E.sim.j[a].injected = (uint8_t)b;
    else if (!strcmp(word, "estop") && got >= 2) E.sim.estop = (int)a;
    else if (!strcmp(word, "stats")) {
        print_stats();
        fflush(stdout);
        return 1;
    } else {
        printf("ERROR unknown command: %s", line);
        fflush(stdout);
        return 1;
    }
    printf("OK %s\n", word);
    fflush(stdout);
    return 1;
}

/* ---------------------------------------------------------------- sim-plant driver */
static struct {
    int in, out;
    unsigned n;
    float cmd[VB_MAX_JOINTS][5];
    float state[VB_MAX_JOINTS][3];
    float gyro[3], gravity[3];
    int enabled;
} PL = {-1, -1, 0, {{0}}, {{0}}, {0, 0, 0}, {0, 0, -1}, 0};

static int full_io(int fd, void *buf, size_t n, int writing)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t k = writing ? write(fd, p, n) : read(fd, p, n);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void plant_command(void *ctx, unsigned j, float q, float kp, float kd, float ff,
                          float limit)
{
    (void)ctx;
    if (j >= PL.n) return;
    PL.cmd[j][0] = q; PL.cmd[j][1] = kp; PL.cmd[j][2] = kd; PL.cmd[j][3] = ff; PL.cmd[j][4] = limit;
}

static void plant_read(void *ctx, unsigned j, float *q, float *dq, float *tau, uint8_t *temp,
                       uint8_t *err)
{
    (void)ctx;
    if (j >= PL.n) return;
    *q = PL.state[j][0]; *dq = PL.state[j][1]; *tau = PL.state[j][2];
    *temp = 35;
    *err = E.sim.j[j].injected;
}

static void plant_enable(void *ctx, int on) { (void)ctx; PL.enabled = on; }

static void plant_imu(void *ctx, float gyro[3], float gravity[3])
{
    (void)ctx;
    memcpy(gyro, PL.gyro, sizeof PL.gyro);
    memcpy(gravity, PL.gravity, sizeof PL.gravity);
}

static int plant_estop(void *ctx) { (void)ctx; return E.sim.estop; }

static void plant_update(void *ctx, uint32_t now_us)
{
    (void)ctx;
    uint8_t msg[6 + sizeof PL.cmd];
    msg[0] = 'S';
    memcpy(msg + 1, &now_us, 4);
    msg[5] = (uint8_t)PL.enabled;
    memcpy(msg + 6, PL.cmd, sizeof(float) * 5 * PL.n);
    float reply[VB_MAX_JOINTS * 3 + 6];
    if (full_io(PL.out, msg, 6 + sizeof(float) * 5 * PL.n, 1) ||
        full_io(PL.in, reply, sizeof(float) * (3 * PL.n + 6), 0)) {
        fprintf(stderr, "vb_emulator: the plant process is gone\n");
        exit(1);
    }
    memcpy(PL.state, reply, sizeof(float) * 3 * PL.n);
    memcpy(PL.gyro, reply + 3 * PL.n, sizeof PL.gyro);
    memcpy(PL.gravity, reply + 3 * PL.n + 3, sizeof PL.gravity);
}

int main(int argc, char **argv)
{
    long baud = 1000000, joints = 12;
    int spin = 0;
    const char *board = "vbemu";
    float pose[VB_MAX_JOINTS] = {0};
    E.rng = 0x9E3779B9u;
    E.master = E.slave_keep = -1;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--baud") && i + 1 < argc) baud = atol(argv[++i]);
        else if (!strcmp(argv[i], "--joints") && i + 1 < argc) joints = atol(argv[++i]);
        else if (!strcmp(argv[i], "--link") && i + 1 < argc)
            snprintf(E.link, sizeof E.link, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--board") && i + 1 < argc) board = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) E.rng = (uint32_t)atol(argv[++i]) | 1u;
        else if (!strcmp(argv[i], "--spin")) spin = 1;
        else if (!strcmp(argv[i], "--plant-fd") && i + 1 < argc) {
            if (sscanf(argv[++i], "%d,%d", &PL.in, &PL.out) != 2) {
                fprintf(stderr, "vb_emulator: --plant-fd IN,OUT\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--pose") && i + 1 < argc) {
            char *p = argv[++i];
            for (unsigned k = 0; k < VB_MAX_JOINTS && *p; ++k) {
                pose[k] = strtof(p, &p);
                if (*p == ',') ++p;
            }
        }
        else {
            fprintf(stderr, "vb_emulator: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (baud <= 0 || joints < 1 || joints > (long)VB_MAX_JOINTS) {
        fprintf(stderr, "vb_emulator: --baud must be > 0 and --joints 1..%u\n", VB_MAX_JOINTS);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    E.byte_ns = (uint64_t)(10.0 * 1e9 / (double)baud + 0.5);
    vb_motor_sim_init(&E.sim, (unsigned)joints, pose);
    vb_motor_driver drv = vb_motor_sim_driver(&E.sim);
    if (PL.in >= 0) {
        vb_motor_driver plant = {NULL, plant_command, plant_read, plant_enable, plant_imu,
                                 plant_update, plant_estop};
        PL.n = (unsigned)joints;
        drv = plant;
        plant_update(NULL, 0); /* the first state, before anyone asks */
    }
    vb_fw_init(&E.fw, &drv, (unsigned)joints, send_frame, NULL, board);
    if (open_port()) {
        perror("vb_emulator: opening a pseudo-terminal");
        return 1;
    }
    printf("READY %s\n", E.link[0] ? E.link : E.slave_name);
    fflush(stdout);

    const uint64_t t0 = now_ns();
    uint64_t next_tick = t0;
    char line[256];
    size_t line_n = 0;
    for (;;) {
        uint64_t now = now_ns();
        int stalled = now < E.stall_until_ns;
        if (E.master < 0 && E.reconnect_at_ns && now >= E.reconnect_at_ns) {
            E.reconnect_at_ns = 0;
            if (open_port()) {
                perror("vb_emulator: reopening");
                return 1;
            }
        }
        /* firmware work that is due */
        if (now >= next_tick) {
            vb_fw_tick(&E.fw, (uint32_t)((now - t0) / 1000u));
            next_tick += 1000000ull;
            if (next_tick < now) next_tick = now + 1000000ull;
        }
        if (!stalled && E.rx_n && now >= E.rx_due_ns) {
            vb_fw_receive(&E.fw, E.rx, E.rx_n, (uint32_t)((now - t0) / 1000u));
            E.rx_n = 0;
        }
        while (!stalled && E.master >= 0 && E.tx_count && now >= E.txq[E.tx_head].due_ns) {
            tx_item *it = &E.txq[E.tx_head];
            ssize_t w = write(E.master, it->data, it->n);
            if (w > 0) E.tx_bytes += (unsigned long)w;
            E.tx_head = (E.tx_head + 1) % TXQ;
            E.tx_count--;
        }
        /* wait for the next event: input, a due frame, the tick */
        uint64_t next = next_tick;
        if (E.rx_n && E.rx_due_ns < next) next = E.rx_due_ns;
        if (E.tx_count && E.txq[E.tx_head].due_ns < next) next = E.txq[E.tx_head].due_ns;
        if (stalled && E.stall_until_ns < next) next = E.stall_until_ns;
        now = now_ns();
        int64_t wait_ns = next > now ? (int64_t)(next - now) : 0;
        /* sleep to ~60 us before the event, then poll without blocking (precise timing) */
        int64_t sleep_ns = spin ? 0 : wait_ns - 60000;
        struct pollfd fds[2] = {{0, POLLIN, 0}, {E.master, POLLIN, 0}};
        nfds_t nfds = (E.master >= 0 && !stalled) ? 2 : 1;
        struct timespec ts = {0, 0};
        if (sleep_ns > 0) {
            ts.tv_sec = (time_t)(sleep_ns / 1000000000);
            ts.tv_nsec = (long)(sleep_ns % 1000000000);
        }
        int r = ppoll(fds, nfds, &ts, NULL);
        if (r < 0 && errno != EINTR) {
            perror("vb_emulator: ppoll");
            return 1;
        }
        if (r > 0 && (fds[0].revents & (POLLIN | POLLHUP))) {
            char c;
            ssize_t got = read(0, &c, 1);
            if (got <= 0) break; /* stdin closed: the controlling process is gone */
            if (c == '\n' || line_n == sizeof line - 2) {
                line[line_n++] = '\n';
                line[line_n] = 0;
                line_n = 0;
                if (!command(line)) break;
            } else {
                line[line_n++] = c;
            }
        }
        if (r > 0 && nfds == 2 && (fds[1].revents & POLLIN)) {
            uint8_t buf[1024];
            ssize_t got = read(E.master, buf, sizeof buf);
            if (got > 0) {
                uint64_t t = now_ns();
                size_t n = (size_t)got;
                if (n > sizeof E.rx - E.rx_n) n = sizeof E.rx - E.rx_n;
                memcpy(E.rx + E.rx_n, buf, n);
                E.rx_n += n;
                E.rx_bytes += (unsigned long)got;
                uint64_t start = E.rx_busy_ns > t ? E.rx_busy_ns : t;
                E.rx_busy_ns = start + (uint64_t)got * E.byte_ns;
                E.rx_due_ns = E.rx_busy_ns;
            }
        }
    }
    close_port();
    if (E.link[0]) unlink(E.link);
    return 0;
}
