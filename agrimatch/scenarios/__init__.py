"""The shipped scenarios, one TOML file each (read by :mod:`agrimatch.scenario`)."""
