"""Workers: the event backbone's consumers (projections, audit, notifications) and the scheduled monitoring cycle."""
