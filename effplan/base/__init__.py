"""The floor every layer stands on: errors, units, atomic writes, the version."""
