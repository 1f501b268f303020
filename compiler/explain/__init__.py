"""`planc explain`: groups, placement and predicted timeline as data and text, and the Gantt chart."""
