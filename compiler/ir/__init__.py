"""The plan IR: PlanGraph (graph.py), its typed task records (records.py) and the printer."""
