"""Wire formats and robot-side emulators (torch-free): our serial protocol and the firmware
emulator launcher, DYNAMIXEL Protocol 2.0 and an emulated bus, Unitree SDK2's messages,
CRC and motion-switch service, and the simulated robot on DDS. The HAL backends build on
it; it imports nothing from `hal/` (the checks that drive both live in `hil/`)."""
