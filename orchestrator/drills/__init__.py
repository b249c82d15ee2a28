"""Failover drills: a planned switchover and switchback, with mail flowing, measured."""
