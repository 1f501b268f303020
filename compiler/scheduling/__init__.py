"""Scheduling and placement of task graphs on heterogeneous devices."""
