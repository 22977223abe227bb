"""Unitree's motion-switcher service (`motion_switcher`, on the SDK's DDS RPC), both ends.

A Unitree robot boots with its own motion control (balance, walking: the "ai" or "normal"
mode) owning the motors; low-level `rt/lowcmd` commands count only once that mode is
released. `MotionSwitcherClient` is the controller's end (`UnitreeHardware` releases the mode
before its first command, as Unitree's low-level examples do); `MotionSwitcherService` is the
service our simulated robot serves, ignoring commands while a mode is selected. The PyPI
wheel of the SDK (1.0.1) has the RPC client and server but not this service's client: the
service name, API version and API ids below are the SDK's (`motion_switcher_api.py`).
"""

from __future__ import annotations

import json
from typing import Any

from velora_robot.bridge import unitree as U

SERVICE, API_VERSION = "motion_switcher", "1.0.0.1"
CHECK_MODE, SELECT_MODE, RELEASE_MODE = 1001, 1002, 1003
BOOT_MODE = "ai"  # the mode our simulated robot boots in unless told otherwise
RPC_API_TIMEOUT = 3104  # the SDK's code for "no response within the timeout"
SERVER_PARAMETER_ERROR = 7001  # the service's "request parameter error"


class MotionSwitcherClient:
    """The controller's end: CheckMode and ReleaseMode, each waiting `timeout_s` for the
    answer. Calls return the SDK's code (0: done; `RPC_API_TIMEOUT`: no answer)."""

    def __init__(self, timeout_s: float) -> None:
        self._client = U.sdk().RpcClient(SERVICE, False)
        self._client._SetApiVerson(API_VERSION)  # (the SDK's spelling)
        for api in (CHECK_MODE, RELEASE_MODE):
            self._client._RegistApi(api, 0)
        self._client.SetTimeout(timeout_s)

    def check_mode(self) -> tuple[int, str]:
        """(code, the robot's motion-control mode; "" when released)."""
        code, data = self._client._Call(CHECK_MODE, "{}")
        if code != 0:
            return code, ""
        return code, str(json.loads(data or "{}").get("name", ""))

    def release_mode(self) -> int:
        """Ask the robot to release its motion-control mode."""
        return self._client._Call(RELEASE_MODE, "{}")[0]


class MotionSwitcherService:
    """The service of a simulated robot, starting in `mode` ("" = already released):
    CheckMode answers {"form": "0", "name": mode}, ReleaseMode clears it, SelectMode sets
    it again. `mode` is read by the robot's command handler."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.releases = 0
        self._server: Any = None  # held: the SDK closes a collected server's channels

    def start(self) -> None:
        """Serve on the domain the process has joined (`unitree.open_domain`)."""
        server = U.sdk().RpcServer(SERVICE)
        server._SetApiVersion(API_VERSION)
        server._RegistHandler(CHECK_MODE, self._check_mode, False)
        server._RegistHandler(SELECT_MODE, self._select_mode, False)
        server._RegistHandler(RELEASE_MODE, self._release_mode, False)
        server.Start()
        self._server = server

    def _check_mode(self, parameter: str) -> tuple[int, str]:
        return 0, json.dumps({"form": "0", "name": self.mode})

    def _select_mode(self, parameter: str) -> tuple[int, str]:
        name = json.loads(parameter or "{}").get("name")
        if not isinstance(name, str) or not name:
            return SERVER_PARAMETER_ERROR, ""
        self.mode = name
        return 0, ""

    def _release_mode(self, parameter: str) -> tuple[int, str]:
        self.mode = ""
        self.releases += 1
        return 0, ""
