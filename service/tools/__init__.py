"""Tools around the daemon: demo, bench, soak, profiling, the synthetic feed and the embedded
broker."""
