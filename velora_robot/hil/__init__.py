"""Hardware-in-the-loop checks (torch-free): `velora-robot hil` against a bridge board or
the firmware emulator (`firmware.py`, with the simulated robot behind the emulator in
`plant.py`), and `hil --dds` over Unitree SDK2's DDS topics (`dds.py`). They drive the HAL
backends; `bridge/` below them holds only wire formats and robot-side emulators."""
