"""The firmware bridge, host side: the serial protocol, the firmware emulator launcher and
the hardware-in-the-loop check (torch-free)."""
