"""MuJoCo scene files written by the project, installed as the `velora_robot.scenes` package."""
