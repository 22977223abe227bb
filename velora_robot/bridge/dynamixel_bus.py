"""An emulated DYNAMIXEL Protocol 2.0 bus of X-series servos on a pseudo-terminal, for
tests and desk checks without servos. A thread answers PING, READ, WRITE, SYNC READ and
SYNC WRITE from per-servo control tables; with torque on, a servo moves toward its goal
position (first order, 30 ms) unless its Position P Gain is 0; the bus watchdog stops a
servo when the host goes quiet; injected Hardware Error Status bits set the alert bit of
every status packet and switch the servo's torque off, as the real firmware does."""

from __future__ import annotations

import os
import select
import struct
import threading
import time
import tty

from velora_robot.bridge import dynamixel as D

XM430_W350 = 1020
TIME_CONSTANT_S = 0.03


class _Servo:
    def __init__(self, dxl_id: int, position: int) -> None:
        self.id = dxl_id
        self.table = bytearray(256)
        struct.pack_into("<H", self.table, D.Addr.MODEL_NUMBER, XM430_W350)
        self.table[D.Addr.OPERATING_MODE] = 3  # position control
        struct.pack_into("<H", self.table, D.Addr.POSITION_P_GAIN, 800)
        struct.pack_into("<H", self.table, D.Addr.POSITION_D_GAIN, 0)
        struct.pack_into("<i", self.table, D.Addr.GOAL_POSITION, position)
        self.position = float(position)
        self.velocity = 0.0
        self.table[D.Addr.PRESENT_TEMPERATURE] = 35
        self.last = time.monotonic()

    def advance(self, now: float) -> None:
        dt, self.last = now - self.last, now
        t = self.table
        torque = t[D.Addr.TORQUE_ENABLE] and t[D.Addr.HARDWARE_ERROR_STATUS] == 0
        p_gain = struct.unpack_from("<H", t, D.Addr.POSITION_P_GAIN)[0]
        before = self.position
        if torque and p_gain > 0 and t[D.Addr.BUS_WATCHDOG] != 0xFF:
            goal = struct.unpack_from("<i", t, D.Addr.GOAL_POSITION)[0]
            self.position += (goal - self.position) * (1 - pow(2.718281828, -dt / TIME_CONSTANT_S))
        self.velocity = (self.position - before) / dt if dt > 0 else 0.0
        struct.pack_into("<i", t, D.Addr.PRESENT_POSITION, round(self.position))
        units = self.velocity * D.RAD_PER_PULSE / D.RAD_S_PER_UNIT
        struct.pack_into("<i", t, D.Addr.PRESENT_VELOCITY, round(units))

    def alert(self) -> int:
        return D.ALERT if self.table[D.Addr.HARDWARE_ERROR_STATUS] else 0


class EmulatedBus:
    """Servos with `ids` on a pty; `port` is its device path. Use as a context manager."""

    def __init__(self, ids: list[int], position: int = D.CENTER) -> None:
        self.servos = {i: _Servo(i, position) for i in ids}
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave  # kept open: the master never sees a hang-up
        self.instructions = 0
        self.last_instruction = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def inject_hardware_error(self, dxl_id: int, bits: int) -> None:
        with self._lock:
            servo = self.servos[dxl_id]
            servo.table[D.Addr.HARDWARE_ERROR_STATUS] = bits
            servo.table[D.Addr.TORQUE_ENABLE] = 0

    def table(self, dxl_id: int) -> bytearray:
        return self.servos[dxl_id].table

    def _status(self, servo: _Servo, params: bytes = b"", error: int = 0) -> bytes:
        return D.packet(servo.id, D.Inst.STATUS, bytes([error | servo.alert()]) + params)

    def _handle(self, dxl_id: int, inst: int, params: bytes) -> bytes:
        out = b""
        now = time.monotonic()
        for servo in self.servos.values():
            servo.advance(now)
        if inst == D.Inst.SYNC_WRITE:
            address, length = struct.unpack_from("<HH", params)
            body = params[4:]
            for k in range(0, len(body), length + 1):
                servo = self.servos.get(body[k])
                if servo is not None:
                    self._write(servo, address, body[k + 1:k + 1 + length])
            return b""
        if inst == D.Inst.SYNC_READ:
            address, length = struct.unpack_from("<HH", params)
            for i in params[4:]:
                servo = self.servos.get(i)
                if servo is not None:
                    out += self._status(servo, bytes(servo.table[address:address + length]))
            return out
        servo = self.servos.get(dxl_id)
        if servo is None:
            return b""
        if inst == D.Inst.PING:
            return self._status(servo, bytes(servo.table[0:2]) + b"\x2e")
        if inst == D.Inst.READ:
            address, length = struct.unpack_from("<HH", params)
            return self._status(servo, bytes(servo.table[address:address + length]))
        if inst == D.Inst.WRITE:
            address = struct.unpack_from("<H", params)[0]
            self._write(servo, address, params[2:])
            return self._status(servo)
        return self._status(servo, error=2)  # instruction error

    def _write(self, servo: _Servo, address: int, data: bytes) -> None:
        if address == D.Addr.GOAL_POSITION and servo.table[D.Addr.BUS_WATCHDOG] == 0xFF:
            return  # a tripped bus watchdog ignores new goals until it is cleared
        servo.table[address:address + len(data)] = data

    def _serve(self) -> None:
        parser = D.StatusParser()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.005)
            now = time.monotonic()
            with self._lock:
                for servo in self.servos.values():  # the bus watchdog, in 20 ms units
                    wd = servo.table[D.Addr.BUS_WATCHDOG]
                    if 0 < wd < 0xFF and now - self.last_instruction > wd * 0.020:
                        servo.advance(now)
                        servo.table[D.Addr.BUS_WATCHDOG] = 0xFF
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for item in parser.push(data):
                if isinstance(item, D.Status):
                    continue
                with self._lock:
                    self.instructions += 1
                    self.last_instruction = time.monotonic()
                    reply = self._handle(*item)
                if reply:
                    os.write(self.master, reply)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        os.close(self.master)
        os.close(self._slave)

    def __enter__(self) -> EmulatedBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
