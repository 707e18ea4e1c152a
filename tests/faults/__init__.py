"""The fault suite: crashes, concurrency, bad rows, bad configuration, disk full, secrets."""
