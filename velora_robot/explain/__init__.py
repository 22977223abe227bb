"""Measurements that explain a controller (issue 21), torch-free, on the exported file: how
much of its action its neurons carry, its structure, activity and the effect of each neuron
(`velora-robot explain`)."""
