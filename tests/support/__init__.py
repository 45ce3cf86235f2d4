"""Test support: real servers started for the suite (PostgreSQL, `jornada serve`)."""
