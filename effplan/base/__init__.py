"""The floor every layer stands on: errors, units, atomic writes, the one validator of TOML data, the version."""
