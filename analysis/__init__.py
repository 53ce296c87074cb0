"""Video geodesic analysis (METHOD §7): path construction, comparisons, verdict, plots."""
