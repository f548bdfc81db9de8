"""Process-wide plumbing every part uses: settings, clocks, logs, metrics, PHI hashing and
periodic jobs."""
